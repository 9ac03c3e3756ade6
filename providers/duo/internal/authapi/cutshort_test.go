package authapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cutShort answers status with headers whose Content-Length promises 4096
// bytes more than the start of the body it sends, then closes the
// connection (a server or proxy that dies mid-answer, a reset) or, with
// stall, sends nothing more until the client gives up. hits counts the
// requests answered so.
func cutShort(status int, stall bool, hits *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body := `{"stat":"OK","response":{"result":"deny","status_msg":"Login denied`
		if status != http.StatusOK {
			body = "<html><body>Blocked by policy"
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+4096))
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(status)
		io.WriteString(w, body)
		http.NewResponseController(w).Flush()
		if stall {
			<-r.Context().Done() // the client gave up (or the server closes)
		}
		panic(http.ErrAbortHandler)
	}
}

// TestAnswerCutShort: once a status line below 500 (but 429) has arrived,
// a body that is cut short or stalls until the deadline is a definite,
// malformed answer classified by its status, never unavailable, and on
// auth_status no timeout (not the long poll's "no answer yet"). A 5xx so
// cut is unavailable, as any 5xx, but no timeout either; a 429 so cut is
// retried as any 429.
func TestAnswerCutShort(t *testing.T) {
	for _, stall := range []bool{false, true} {
		for _, tc := range []struct {
			status int
			class  Class
			tries  int32 // requests to the path
		}{
			{200, ClassRefused, 1},
			{302, ClassRefused, 1},
			{400, ClassRefused, 1},
			{401, ClassCredentials, 2}, // re-signed once with Duo's clock measured again
			{403, ClassCredentials, 1},
			{404, ClassRefused, 1},
			{429, ClassUnavailable, maxRateLimitTries},
			{500, ClassUnavailable, 1},
			{503, ClassUnavailable, 1},
		} {
			if stall {
				tc.tries = 1 // the deadline passed: nothing is retried or re-signed
			}
			for _, path := range []string{PathPreauth, PathAuthStatus} {
				name := "cut/"
				if stall {
					name = "stall/"
				}
				name += strconv.Itoa(tc.status) + path
				t.Run(name, func(t *testing.T) {
					f := newFake(t)
					var hits atomic.Int32
					// The caller gives up on a stalled body once the status
					// line and headers are in (TestAnswerStalledPastTheDeadline:
					// with a deadline).
					cctx, cancel := context.WithCancel(ctx)
					defer cancel()
					f.handle(path, cutShort(tc.status, stall, &hits))
					c := f.client(t, func(cfg *Config) {
						cfg.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
						if stall {
							cfg.Transport = afterHeaders{f.transport(t), cancel}
						}
					})
					var err error
					if path == PathPreauth {
						_, err = c.Preauth(cctx, PreauthRequest{User: User{Username: "alice"}})
					} else {
						_, err = c.AuthStatus(cctx, "tx-1")
					}
					if got := Classify(err); got != tc.class {
						t.Fatalf("Classify(%v) = %s, want %s", err, got, tc.class)
					}
					if IsTimeout(err) {
						t.Errorf("IsTimeout(%v): a status line arrived, so this is no long poll left unanswered", err)
					}
					if strings.Contains(err.Error(), testSKey) || strings.Contains(err.Error(), "Blocked by policy") ||
						strings.Contains(err.Error(), "Login denied") {
						t.Errorf("error quotes the secret key or the body: %v", err)
					}
					if n := hits.Load(); n != tc.tries {
						t.Errorf("%d requests to %s, want %d", n, path, tc.tries)
					}
					if tc.class == ClassUnavailable {
						var u *UnavailableError
						if !errors.As(err, &u) || u.HTTPStatus != tc.status {
							t.Fatalf("err = %v (%T), want unavailable with HTTP %d", err, err, tc.status)
						}
						return
					}
					e, ok := AsError(err)
					if !ok || !e.Malformed || e.HTTPStatus != tc.status || e.Code != 0 {
						t.Fatalf("err = %#v, want a malformed *Error at HTTP %d", err, tc.status)
					}
					msg := err.Error()
					if !strings.Contains(msg, "body cut short after ") || !strings.Contains(msg, "[HTTP "+strconv.Itoa(tc.status)+"]") {
						t.Errorf("error = %q, want the status and \"body cut short\"", msg)
					}
					if stall != strings.Contains(msg, "stalled until the call ended") {
						t.Errorf("error = %q: says it stalled %v, want %v", msg, !stall, stall)
					}
				})
			}
		}
	}
}

// TestCutShort429IsRetried: a 429 whose body is cut short is a 429 all
// the same: retried, and the retry's answer counts.
func TestCutShort429IsRetried(t *testing.T) {
	f := newFake(t)
	var hits atomic.Int32
	limited := cutShort(http.StatusTooManyRequests, false, &hits)
	f.handle(PathCheck, func(w http.ResponseWriter, r *http.Request) {
		if hits.Load() == 0 {
			limited(w, r)
		}
		ok(w, `{"time":1}`)
	})
	var waits []time.Duration
	c := f.client(t, func(cfg *Config) {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	})
	if _, err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(waits) != 1 || waits[0] != time.Second {
		t.Errorf("waits = %v, want the Retry-After of the cut 429 (1s)", waits)
	}
}

// afterHeaders calls then once a response's status line and headers are
// in: a caller that gives up while the body is read.
type afterHeaders struct {
	next http.RoundTripper
	then func()
}

func (a afterHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(r)
	if err == nil {
		a.then()
	}
	return resp, err
}

// transport trusts the fake.
func (f *fake) transport(t *testing.T) *http.Transport {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// TestAnswerStalledPastTheDeadline: a 200 whose body stalls until the
// call's deadline is a malformed answer saying so, not a timeout: on
// auth_status no "the user has not answered yet"; a 503 so stalled is
// unavailable, and no timeout either.
func TestAnswerStalledPastTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  Class
	}{{200, ClassRefused}, {503, ClassUnavailable}} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			f := newFake(t)
			var hits atomic.Int32
			f.handle(PathAuthStatus, cutShort(tc.status, true, &hits))
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := f.client(t).AuthStatus(cctx, "tx-1")
			if got := Classify(err); got != tc.class || IsTimeout(err) || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Fatalf("err = %v (class %s, timeout %v), want class %s, no timeout, the deadline named", err, got, IsTimeout(err), tc.class)
			}
		})
	}
}

// endsDeadline is a transport that answers status with a complete body
// and ends the request's context as the body's last byte is read: the
// answer is whole, but the deadline is met just after.
type endsDeadline struct {
	status int
	body   string
	cancel context.CancelFunc
}

func (e endsDeadline) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: e.status, Header: http.Header{}, Request: r,
		Body: &cancelAtEOF{Reader: strings.NewReader(e.body), cancel: e.cancel}}, nil
}

type cancelAtEOF struct {
	io.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func (c *cancelAtEOF) Close() error { return nil }

// TestAnswerCompleteAtTheDeadline: an answer below 500 read in full is the
// server's answer even when the deadline passes as it ends: decoded, not
// turned into an outage. A 5xx stays unavailable.
func TestAnswerCompleteAtTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		class  Class
	}{
		{200, `{"stat":"OK","response":{"result":"deny","status_msg":"Login denied"}}`, ClassNone},
		{400, `{"stat":"FAIL","code":40002,"message":"Invalid request parameters"}`, ClassRefused},
		{403, `<html>Blocked</html>`, ClassCredentials},
		{503, `<html>down</html>`, ClassUnavailable},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			c, err := New(Config{IntegrationKey: testIKey, SecretKey: testSKey, Host: "api-test.duosecurity.com",
				Transport: endsDeadline{tc.status, tc.body, cancel}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Preauth(cctx, PreauthRequest{User: User{Username: "alice"}})
			if got := Classify(err); got != tc.class {
				t.Fatalf("Classify(%v) = %s, want %s", err, got, tc.class)
			}
			if tc.class == ClassNone && res.Result != PreauthDeny {
				t.Errorf("result = %+v, want Duo's deny", res)
			}
		})
	}
}
