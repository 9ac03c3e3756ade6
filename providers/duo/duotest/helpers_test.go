package duotest

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/authapi"
)

// fakeClock is an injectable clock advanced by hand. It starts at the real
// time because Duo's official client signs with time.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start starts an emulator on a fake clock, closed at the end of the test.
func start(t *testing.T) (*Server, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	s, err := Start(Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// httpClient trusts the emulator only; its idle connections are closed at
// the end of the test.
func httpClient(t *testing.T, s *Server) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// official is Duo's own Go client pointed at the emulator.
func official(t *testing.T, s *Server, ikey, skey string) *authapi.AuthApi {
	t.Helper()
	api := duoapi.NewDuoApi(ikey, skey, s.Host(), "test", duoapi.SetTimeout(30*time.Second))
	api.SetCustomHTTPClient(httpClient(t, s))
	return authapi.NewAuthApi(*api)
}

// call is a hand-built request, for the negative cases the official client
// cannot produce.
type call struct {
	method, path string
	params       url.Values
	ikey, skey   string
	signHost     string           // host put in the canonical string; s.Host() when empty
	date         string           // Date header; the emulator's now when empty
	noDate       bool             // send no Date header
	hash         func() hash.Hash // sha512.New when nil
	canonParams  *string          // replaces the params line of the canonical string
	auth         string           // raw Authorization header instead of a signature
	noAuth       bool             // no Authorization header
	xDuoDate     bool             // send the date as X-Duo-Date instead of Date
	ctx          context.Context
}

func (c call) dateHeader() string {
	if c.xDuoDate {
		return "X-Duo-Date"
	}
	return "Date"
}

func ptr[T any](v T) *T { return &v }

// hooks installs the emulator's test hooks.
func hooks(s *Server, received, done func(Request)) {
	s.mu.Lock()
	s.onReceived, s.onDone = received, done
	s.mu.Unlock()
}

type envelope struct {
	Stat          string          `json:"stat"`
	Response      json.RawMessage `json:"response"`
	Code          int             `json:"code"`
	Message       string          `json:"message"`
	MessageDetail string          `json:"message_detail"`
}

// do sends c and returns the HTTP response, its body and the decoded
// envelope (zero when the body is not JSON).
func (c call) do(t *testing.T, s *Server, hc *http.Client) (*http.Response, []byte, envelope) {
	t.Helper()
	resp, body, err := c.send(s, hc)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	var env envelope
	_ = json.Unmarshal(body, &env)
	return resp, body, env
}

func (c call) send(s *Server, hc *http.Client) (*http.Response, []byte, error) {
	if c.method == "" {
		c.method = http.MethodGet
	}
	signHost := c.signHost
	if signHost == "" {
		signHost = s.Host()
	}
	date := c.date
	if date == "" {
		date = s.Now().UTC().Format(time.RFC1123Z)
	}
	encoded := c.params.Encode()
	u := "https://" + s.Host() + c.path
	var body io.Reader
	if c.method == http.MethodGet {
		if encoded != "" {
			u += "?" + encoded
		}
	} else {
		body = strings.NewReader(encoded)
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if c.method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if !c.noDate {
		req.Header.Set(c.dateHeader(), date)
	}
	switch {
	case c.noAuth:
	case c.auth != "":
		req.Header.Set("Authorization", c.auth)
	default:
		h := c.hash
		if h == nil {
			h = sha512.New
		}
		canon := canonicalV2(date, c.method, signHost, c.path, c.params)
		if c.canonParams != nil {
			canon = strings.Join([]string{date, strings.ToUpper(c.method), strings.ToLower(signHost), c.path, *c.canonParams}, "\n")
		}
		sig := hmacHex(h, c.skey, canon)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.ikey+":"+sig)))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// deref returns *p or 0.
func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
