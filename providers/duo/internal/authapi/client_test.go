package authapi

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

// fake is a minimal Duo: a TLS server that checks signatures and answers
// from per-path handlers.
type fake struct {
	t    *testing.T
	srv  *httptest.Server
	host string
	now  func() time.Time // the server's clock

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	seen     []seenRequest
}

type seenRequest struct {
	Method, Path, Date string
	Params             url.Values
	ContentLength      int64
	Authorized         bool
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, handlers: map[string]http.HandlerFunc{}, now: time.Now}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.host = f.srv.Listener.Addr().String()
	f.handle(PathPing, func(w http.ResponseWriter, r *http.Request) {
		ok(w, fmt.Sprintf(`{"time":%d}`, f.now().Unix()))
	})
	f.handle(PathCheck, func(w http.ResponseWriter, r *http.Request) {
		ok(w, fmt.Sprintf(`{"time":%d}`, f.now().Unix()))
	})
	return f
}

func (f *fake) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	f.handlers[path] = h
	f.mu.Unlock()
}

func (f *fake) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	params := r.Form
	date := r.Header.Get("Date")
	authorized := r.Header.Get("Authorization") ==
		Sign(testIKey, []byte(testSKey), date, r.Method, f.host, r.URL.Path, params)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{r.Method, r.URL.Path, date, params, r.ContentLength, authorized})
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if r.URL.Path != PathPing {
		if !authorized {
			fail(w, 401, 40103, "Invalid signature in request credentials")
			return
		}
		d, err := http.ParseTime(date)
		if err != nil {
			d, err = time.Parse(DateFormat, date)
		}
		if err != nil || d.Sub(f.now()).Abs() > 60*time.Second {
			fail(w, 401, 40105, "Bad request timestamp")
			return
		}
	}
	if h == nil {
		fail(w, 404, 40401, "Resource not found")
		return
	}
	h(w, r)
}

func ok(w http.ResponseWriter, response string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"stat":"OK","response":%s}`, response)
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"stat":"FAIL","code":%d,"message":%q}`, code, msg)
}

func raw(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func (f *fake) client(t *testing.T, mod ...func(*Config)) *Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	cfg := Config{IntegrationKey: testIKey, SecretKey: testSKey, Host: f.host, RootCAs: pool}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{SecretKey: testSKey, Host: "api-x.duosecurity.com"},
		{IntegrationKey: testIKey, Host: "api-x.duosecurity.com"},
		{IntegrationKey: testIKey, SecretKey: testSKey},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "https://api-x.duosecurity.com"},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "api-x.duosecurity.com/path"},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "user@api-x.duosecurity.com"},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "host:0"},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "host:99999"},
		{IntegrationKey: testIKey, SecretKey: testSKey, Host: "host:port"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg.Host)
		} else if strings.Contains(err.Error(), testSKey) {
			t.Errorf("error leaks the secret key: %v", err)
		}
	}
}

func TestClientDoesNotPrintSecret(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, c); strings.Contains(s, testSKey) {
			t.Errorf("%s prints the secret key: %s", format, s)
		}
	}
}

func TestPingCheckAndOffset(t *testing.T) {
	f := newFake(t)
	local := time.Now()
	// The local clock is 90 s behind the server's.
	c := f.client(t, func(cfg *Config) { cfg.Now = func() time.Time { return time.Now().Add(-90 * time.Second) } })

	// Unsigned ping works however far off the clock is; signed check
	// fails until the offset is measured.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check(ctx)
	if e, isErr := AsError(err); !isErr || !e.IsBadTimestamp() || e.HTTPStatus != 401 {
		t.Fatalf("Check before MeasureOffset = %v, want 40105", err)
	}
	off, err := c.MeasureOffset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := off - 90*time.Second; d.Abs() > 1500*time.Millisecond {
		t.Errorf("offset = %v, want about 90s", off)
	}
	if got, at := c.Offset(); got != off || at.Before(local.Add(-91*time.Second)) {
		t.Errorf("Offset() = %v, %v", got, at)
	}
	duo, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("Check after MeasureOffset: %v", err)
	}
	if d := duo.Sub(time.Now()); d.Abs() > 2*time.Second {
		t.Errorf("check time = %v, want about now", duo)
	}
	reqs := f.requests()
	last := reqs[len(reqs)-1]
	if !last.Authorized || last.Method != "GET" || last.Path != PathCheck {
		t.Errorf("last request = %+v", last)
	}
	if reqs[0].Date != "" {
		t.Errorf("ping was signed (Date %q)", reqs[0].Date)
	}
}

func TestDateUsesOffset(t *testing.T) {
	rec := &recorder{}
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	c, err := New(Config{IntegrationKey: testIKey, SecretKey: testSKey, Host: "api-x.duosecurity.com",
		Transport: rec, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	c.SetOffset(-90*time.Second, fixed)
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	req, _ := rec.last()
	if got, want := req.Header.Get("Date"), "Wed, 02 Jan 2030 02:02:35 +0000"; got != want {
		t.Errorf("Date = %q, want %q", got, want)
	}
}

func TestAuthParams(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var got []url.Values
	f.handle(PathAuth, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.PostForm)
		mu.Unlock()
		if r.PostForm.Get("async") == "1" {
			ok(w, `{"txid":"45f7c92b-f45f-4862-8545-e0f58e78075a"}`)
			return
		}
		ok(w, `{"result":"allow","status":"allow","status_msg":"Success. Logging you in...","extra":[1,2]}`)
	})
	c := f.client(t)
	res, err := c.Auth(ctx, AuthRequest{User: User{Username: "alice"}, Factor: FactorPasscode, Passcode: "123456", IPAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultAllow || res.Status != StatusAllow {
		t.Errorf("Auth = %+v", res)
	}
	txid, err := c.AuthAsync(ctx, AuthRequest{User: User{UserID: "DUABC"}, Factor: FactorPush,
		DisplayUsername: "Alice A.", PushInfo: "from=login&x=1", Type: "Login"})
	if err != nil {
		t.Fatal(err)
	}
	if txid != "45f7c92b-f45f-4862-8545-e0f58e78075a" {
		t.Errorf("txid = %q", txid)
	}
	want := []string{
		"factor=passcode&ipaddr=192.0.2.1&passcode=123456&username=alice",
		"async=1&device=auto&display_username=Alice%20A.&factor=push&pushinfo=from%3Dlogin%26x%3D1&type=Login&user_id=DUABC",
	}
	for i := range want {
		if CanonParams(got[i]) != want[i] {
			t.Errorf("request %d params = %s\nwant %s", i, CanonParams(got[i]), want[i])
		}
	}
	for _, bad := range []AuthRequest{
		{Factor: FactorPush},
		{User: User{Username: "a", UserID: "b"}, Factor: FactorPush},
		{User: User{Username: "a"}, Factor: "bogus"},
		{User: User{Username: "a"}, Factor: FactorPasscode},
		{User: User{Username: "a"}, Factor: FactorPush, Passcode: "1"},
	} {
		if _, err := c.Auth(ctx, bad); err == nil || IsUnavailable(err) {
			t.Errorf("Auth(%+v) = %v, want a usage error", bad, err)
		}
	}
}

func TestEndpoints(t *testing.T) {
	f := newFake(t)
	f.handle(PathPreauth, func(w http.ResponseWriter, r *http.Request) {
		ok(w, `{"result":"auth","status_msg":"Account is active","devices":[{"device":"DP1","type":"phone","capabilities":["auto","push"],"sms_nextcode":"1"}]}`)
	})
	f.handle(PathEnroll, func(w http.ResponseWriter, r *http.Request) {
		if r.PostForm.Get("username") != "bob" || r.PostForm.Get("valid_secs") != "600" {
			fail(w, 400, 40002, "Invalid request parameters")
			return
		}
		ok(w, `{"activation_barcode":"https://x/qr","activation_code":"duo://abc","activation_url":"https://m/abc","expiration":1700000600,"user_id":"DU1","username":"bob"}`)
	})
	f.handle(PathEnrollStatus, func(w http.ResponseWriter, r *http.Request) {
		ok(w, `"waiting"`)
	})
	f.handle(PathAuthStatus, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("txid") != "tx-1" {
			fail(w, 400, 40002, "Invalid request parameters")
			return
		}
		ok(w, `{"result":"waiting","status":"pushed","status_msg":"Pushed a login request to your device..."}`)
	})
	c := f.client(t)
	pre, err := c.Preauth(ctx, PreauthRequest{User: User{Username: "alice"}})
	if err != nil || pre.Result != PreauthAuth || len(pre.Devices) != 1 || pre.Devices[0].Capabilities[1] != "push" {
		t.Errorf("Preauth = %+v, %v", pre, err)
	}
	en, err := c.Enroll(ctx, EnrollRequest{Username: "bob", ValidSecs: 600})
	if err != nil || en.UserID != "DU1" || en.ActivationURL != "https://m/abc" || en.Expiration != 1700000600 {
		t.Errorf("Enroll = %+v, %v", en, err)
	}
	st, err := c.EnrollStatus(ctx, "DU1", "duo://abc")
	if err != nil || st != EnrollWaiting {
		t.Errorf("EnrollStatus = %q, %v", st, err)
	}
	as, err := c.AuthStatus(ctx, "tx-1")
	if err != nil || as.Result != ResultWaiting || as.Status != StatusPushed {
		t.Errorf("AuthStatus = %+v, %v", as, err)
	}
	if _, err := c.AuthStatus(ctx, "../x"); err == nil {
		t.Error("AuthStatus accepted a malformed txid")
	}
}

func TestResponses(t *testing.T) {
	type want struct {
		code        int // *Error with this code, when unavailable is false
		status      int
		unavailable bool
	}
	big := `{"stat":"OK","response":{"time":1,"pad":"` + strings.Repeat("x", DefaultMaxResponseBytes) + `"}}`
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want want
	}{
		{"40102", raw(401, `{"stat":"FAIL","code":40102,"message":"Invalid integration key in request credentials"}`), want{code: 40102, status: 401}},
		{"40301", raw(403, `{"code": 40301, "message": "Access forbidden", "stat": "FAIL"}`), want{code: 40301, status: 403}},
		{"40002 detail", raw(400, `{"stat":"FAIL","code":40002,"message":"Invalid request parameters","message_detail":"username"}`), want{code: 40002, status: 400}},
		{"FAIL with 200", raw(200, `{"stat":"FAIL","code":40002,"message":"x"}`), want{code: 40002, status: 200}},
		{"code as string", raw(400, `{"stat":"FAIL","code":"40002","message":"x"}`), want{code: 40002, status: 400}},
		{"FAIL without code", raw(400, `{"stat":"FAIL","code":"","message":"x"}`), want{unavailable: true, status: 400}},
		{"500 FAIL", raw(500, `{"stat":"FAIL","code":50000,"message":"Internal"}`), want{unavailable: true, status: 500}},
		{"503 HTML", raw(503, `<html>down</html>`), want{unavailable: true, status: 503}},
		{"empty 401", raw(401, ``), want{unavailable: true, status: 401}},
		{"redirect", raw(302, ``, "Location", "https://example.com/"), want{unavailable: true, status: 302}},
		{"malformed", raw(200, `{"stat":"OK","response":{"time":`), want{unavailable: true, status: 200}},
		{"not JSON", raw(200, `OK`), want{unavailable: true, status: 200}},
		{"trailing data", raw(200, `{"stat":"OK","response":{"time":1}} {}`), want{unavailable: true, status: 200}},
		{"unknown stat", raw(200, `{"stat":"MAYBE","response":{"time":1}}`), want{unavailable: true, status: 200}},
		{"no response", raw(200, `{"stat":"OK"}`), want{unavailable: true, status: 200}},
		{"null response", raw(200, `{"stat":"OK","response":null}`), want{unavailable: true, status: 200}},
		{"no time", raw(200, `{"stat":"OK","response":{}}`), want{unavailable: true, status: 200}},
		{"time wrong type", raw(200, `{"stat":"OK","response":{"time":"now"}}`), want{unavailable: true, status: 200}},
		{"OK with 500", raw(500, `{"stat":"OK","response":{"time":1}}`), want{unavailable: true, status: 500}},
		{"too big", raw(200, big), want{unavailable: true, status: 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(PathCheck, tc.h)
			_, err := f.client(t).Check(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testSKey) {
				t.Errorf("error leaks the secret key: %v", err)
			}
			var u *UnavailableError
			if tc.want.unavailable {
				if !errors.As(err, &u) || u.HTTPStatus != tc.want.status {
					t.Fatalf("err = %v (%T), want unavailable with HTTP %d", err, err, tc.want.status)
				}
				return
			}
			if errors.As(err, &u) {
				t.Fatalf("err = %v, want a definite *Error", err)
			}
			e, isErr := AsError(err)
			if !isErr || e.Code != tc.want.code || e.HTTPStatus != tc.want.status {
				t.Fatalf("err = %#v, want code %d HTTP %d", err, tc.want.code, tc.want.status)
			}
		})
	}
}

func TestResultValidation(t *testing.T) {
	f := newFake(t)
	f.handle(PathPreauth, raw(200, `{"stat":"OK","response":{"result":"maybe"}}`))
	f.handle(PathAuth, raw(200, `{"stat":"OK","response":{"result":"waiting"}}`))
	f.handle(PathEnrollStatus, raw(200, `{"stat":"OK","response":"done"}`))
	f.handle(PathEnroll, raw(200, `{"stat":"OK","response":{"activation_code":"x","user_id":"DU1"}}`))
	c := f.client(t)
	checks := map[string]error{}
	_, checks["preauth"] = c.Preauth(ctx, PreauthRequest{User: User{Username: "a"}})
	_, checks["auth"] = c.Auth(ctx, AuthRequest{User: User{Username: "a"}, Factor: FactorPasscode, Passcode: "1"})
	_, checks["async"] = c.AuthAsync(ctx, AuthRequest{User: User{Username: "a"}, Factor: FactorPush})
	_, checks["enroll_status"] = c.EnrollStatus(ctx, "DU1", "x")
	_, checks["enroll"] = c.Enroll(ctx, EnrollRequest{})
	for name, err := range checks {
		if !IsUnavailable(err) {
			t.Errorf("%s: err = %v, want unavailable (malformed)", name, err)
		}
	}
}

// fakeSleep replaces the client's sleep and records the waits.
func fakeSleep(c *Client) *[]time.Duration {
	var waits []time.Duration
	var mu sync.Mutex
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return &waits
}

func TestRateLimit(t *testing.T) {
	limited := raw(429, `{"stat":"FAIL","code":42901,"message":"Too Many Requests"}`)
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		responses int // how many 429s before an OK
		header    string
		wantWaits []time.Duration
		wantOK    bool
		wantCalls int
	}{
		{"retry fits", 10 * time.Second, 1, "2", []time.Duration{2 * time.Second}, true, 2},
		{"retry beyond deadline", time.Second, 1, "2", nil, false, 1},
		{"retried once only", 10 * time.Second, 2, "2", []time.Duration{2 * time.Second}, false, 2},
		{"no header: default wait", 10 * time.Second, 1, "", []time.Duration{DefaultRetryAfter}, true, 2},
		{"beyond max wait", time.Hour, 1, "3600", nil, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			var mu sync.Mutex
			n := 0
			f.handle(PathPreauth, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				k := n
				mu.Unlock()
				if k <= tc.responses {
					if tc.header == "" {
						raw(429, "")(w, r)
					} else {
						w.Header().Set("Retry-After", tc.header)
						limited(w, r)
					}
					return
				}
				// The retry carries the whole body.
				if r.PostForm.Get("username") != "alice" || r.PostForm.Get("ipaddr") != "192.0.2.1" {
					fail(w, 400, 40002, "Invalid request parameters")
					return
				}
				ok(w, `{"result":"auth","status_msg":"ok"}`)
			})
			// A clock that moves a second per call, so the retry has its
			// own Date.
			var clk sync.Mutex
			tick := time.Now()
			c := f.client(t, func(cfg *Config) {
				cfg.Now = func() time.Time { clk.Lock(); defer clk.Unlock(); tick = tick.Add(time.Second); return tick }
			})
			waits := fakeSleep(c)
			cctx, cancel := context.WithTimeout(ctx, tc.timeout)
			defer cancel()
			start := time.Now()
			_, err := c.Preauth(cctx, PreauthRequest{User: User{Username: "alice"}, IPAddr: "192.0.2.1"})
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tc.wantOK != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.wantOK)
			}
			if !tc.wantOK {
				var u *UnavailableError
				if !errors.As(err, &u) || u.HTTPStatus != 429 {
					t.Fatalf("err = %v, want unavailable 429", err)
				}
				if e, _ := AsError(err); e == nil || e.HTTPStatus != 429 {
					t.Errorf("err does not wrap the 429 *Error: %v", err)
				}
			}
			if fmt.Sprint(*waits) != fmt.Sprint(tc.wantWaits) {
				t.Errorf("waits = %v, want %v", *waits, tc.wantWaits)
			}
			reqs := f.requests()
			if len(reqs) != tc.wantCalls {
				t.Fatalf("%d requests, want %d", len(reqs), tc.wantCalls)
			}
			if len(reqs) == 2 {
				if reqs[0].Date == reqs[1].Date {
					t.Error("the retry reused the Date")
				}
				if !reqs[1].Authorized || reqs[1].ContentLength <= 0 || reqs[1].Params.Get("username") != "alice" {
					t.Errorf("retry = %+v, want signed with the full body", reqs[1])
				}
			}
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              DefaultRetryAfter,
		"0":                             0,
		"5":                             5 * time.Second,
		"-1":                            DefaultRetryAfter,
		"soon":                          DefaultRetryAfter,
		"99999999999999999999":          DefaultRetryAfter,
		"3600":                          MaxRetryAfter + time.Second,
		"Tue, 01 Jan 2030 00:00:07 GMT": 7 * time.Second,
		"Mon, 31 Dec 2029 23:00:00 GMT": 0,
	} {
		h := http.Header{}
		if in != "" {
			h.Set("Retry-After", in)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDeadline(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle(PathAuthStatus, func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	c := f.client(t)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.AuthStatus(cctx, "tx-1")
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("AuthStatus took %v with a 300ms deadline", el)
	}
	if !IsUnavailable(err) || !IsTimeout(err) {
		t.Errorf("err = %v, want an unavailable timeout", err)
	}
}

func TestNetworkError(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.srv.Close()
	_, err := c.Check(ctx)
	if !IsUnavailable(err) || IsTimeout(err) {
		t.Errorf("err = %v, want unavailable, not a timeout", err)
	}
	var u *UnavailableError
	if errors.As(err, &u) && u.HTTPStatus != 0 {
		t.Errorf("HTTPStatus = %d", u.HTTPStatus)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(cfg *Config) { cfg.RootCAs = x509.NewCertPool() })
	if _, err := c.Ping(ctx); !IsUnavailable(err) {
		t.Errorf("Ping with an untrusted certificate = %v, want unavailable", err)
	}
}

func TestCleanMessages(t *testing.T) {
	f := newFake(t)
	f.handle(PathCheck, raw(400, `{"stat":"FAIL","code":40002,"message":"line1\nline2\u0000`+strings.Repeat("é", 400)+`"}`))
	_, err := f.client(t).Check(ctx)
	e, isErr := AsError(err)
	if !isErr {
		t.Fatal(err)
	}
	if strings.ContainsAny(e.Message, "\n\x00") || len(e.Message) > maxMessageLen+len("…") {
		t.Errorf("message not cleaned: %q", e.Message)
	}
}
