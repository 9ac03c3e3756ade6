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

	// Unsigned ping works however far off the clock is; a signed check
	// before any measurement is answered 40105, which makes the client
	// measure and re-sign: it succeeds on the second try.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(ctx); err != nil {
		t.Fatalf("Check before MeasureOffset = %v, want compensated on the 40105", err)
	}
	if reqs := f.requests(); len(reqs) != 4 || reqs[1].Authorized && reqs[1].Path == PathCheck && reqs[1].Date == reqs[3].Date {
		t.Fatalf("requests = %+v, want ping, check (40105), ping, check", reqs)
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

// TestResponses is the classification table of the README, one row per
// kind of answer: only transport errors, deadlines, 5xx and 429 after the
// retries are unavailable; every other answer is definite.
func TestResponses(t *testing.T) {
	big := `{"stat":"OK","response":{"time":1,"pad":"` + strings.Repeat("x", DefaultMaxResponseBytes) + `"}}`
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		class  Class
		status int
		code   int // Duo's code in the *Error, for definite answers
	}{
		{"40102", raw(401, `{"stat":"FAIL","code":40102,"message":"Invalid integration key in request credentials"}`), ClassCredentials, 401, 40102},
		{"40301", raw(403, `{"code": 40301, "message": "Access forbidden", "stat": "FAIL"}`), ClassCredentials, 403, 40301},
		{"bare 403", raw(403, ``), ClassCredentials, 403, 0},
		{"40105", raw(401, `{"stat":"FAIL","code":40105,"message":"Bad request timestamp"}`), ClassClock, 401, 40105},
		{"40002 detail", raw(400, `{"stat":"FAIL","code":40002,"message":"Invalid request parameters","message_detail":"username"}`), ClassRefused, 400, 40002},
		{"FAIL with 200", raw(200, `{"stat":"FAIL","code":40002,"message":"x"}`), ClassRefused, 200, 40002},
		{"FAIL 200 non-Duo code", raw(200, `{"stat":"FAIL","code":1000,"message":"Bad user"}`), ClassRefused, 200, 1000},
		{"code as string", raw(400, `{"stat":"FAIL","code":"40002","message":"x"}`), ClassRefused, 400, 40002},
		{"FAIL without code", raw(400, `{"stat":"FAIL","code":"","message":"x"}`), ClassRefused, 400, 0},
		{"FAIL malformed code", raw(400, `{"stat":"FAIL","code":"x1","message":"x"}`), ClassRefused, 400, 0},
		{"500 FAIL", raw(500, `{"stat":"FAIL","code":50000,"message":"Internal"}`), ClassUnavailable, 500, 0},
		{"503 HTML", raw(503, `<html>down</html>`), ClassUnavailable, 503, 0},
		{"502 empty", raw(502, ``), ClassUnavailable, 502, 0},
		{"empty 401", raw(401, ``), ClassCredentials, 401, 0},
		{"empty 400", raw(400, ``), ClassRefused, 400, 0},
		{"empty 402", raw(402, ``), ClassRefused, 402, 0},
		{"empty 404", raw(404, ``), ClassRefused, 404, 0},
		{"HTML 404", raw(404, `<html>not found</html>`), ClassRefused, 404, 0},
		{"redirect", raw(302, ``, "Location", "https://example.com/"), ClassRefused, 302, 0},
		{"malformed", raw(200, `{"stat":"OK","response":{"time":`), ClassRefused, 200, 0},
		{"empty 200", raw(200, ``), ClassRefused, 200, 0},
		{"not JSON", raw(200, `OK`), ClassRefused, 200, 0},
		{"trailing data", raw(200, `{"stat":"OK","response":{"time":1}} {}`), ClassRefused, 200, 0},
		{"unknown stat", raw(200, `{"stat":"BAD_STATUS","response":{"time":1}}`), ClassRefused, 200, 0},
		{"no response", raw(200, `{"stat":"OK"}`), ClassRefused, 200, 0},
		{"null response", raw(200, `{"stat":"OK","response":null}`), ClassRefused, 200, 0},
		{"no time", raw(200, `{"stat":"OK","response":{}}`), ClassRefused, 200, 0},
		{"time wrong type", raw(200, `{"stat":"OK","response":{"time":"now"}}`), ClassRefused, 200, 0},
		{"OK with 500", raw(500, `{"stat":"OK","response":{"time":1}}`), ClassUnavailable, 500, 0},
		{"OK with 404", raw(404, `{"stat":"OK","response":{"time":1}}`), ClassRefused, 404, 0},
		{"too big", raw(200, big), ClassRefused, 200, 0},
		{"too big 503", raw(503, big), ClassUnavailable, 503, 0},
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
			if got := Classify(err); got != tc.class {
				t.Fatalf("Classify(%v) = %s, want %s", err, got, tc.class)
			}
			var u *UnavailableError
			if tc.class == ClassUnavailable {
				if !errors.As(err, &u) || u.HTTPStatus != tc.status {
					t.Fatalf("err = %v (%T), want unavailable with HTTP %d", err, err, tc.status)
				}
				return
			}
			e, isErr := AsError(err)
			if !isErr || e.Code != tc.code || e.HTTPStatus != tc.status {
				t.Fatalf("err = %#v, want code %d HTTP %d", err, tc.code, tc.status)
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
		if e, ok := AsError(err); !ok || !e.Malformed || Classify(err) != ClassRefused {
			t.Errorf("%s: err = %v, want a malformed answer, refused", name, err)
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
	const jitter = 250 * time.Millisecond
	now := time.Now().Truncate(time.Second)
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		responses int      // how many 429s before an OK
		header    []string // name, value
		wantWaits []time.Duration
		wantOK    bool
		wantCalls int
	}{
		{"Retry-After seconds", 10 * time.Second, 1, []string{"Retry-After", "2"}, []time.Duration{2 * time.Second}, true, 2},
		{"X-Retry-After", 10 * time.Second, 1, []string{"X-Retry-After", "3"}, []time.Duration{3 * time.Second}, true, 2},
		{"Retry-After HTTP-date", 10 * time.Second, 1, []string{"Retry-After", now.Add(4 * time.Second).UTC().Format(http.TimeFormat)},
			[]time.Duration{4 * time.Second}, true, 2},
		{"retry beyond deadline", time.Second, 1, []string{"Retry-After", "2"}, nil, false, 1},
		{"third try succeeds", 20 * time.Second, 2, []string{"Retry-After", "2"}, []time.Duration{2 * time.Second, 2 * time.Second}, true, 3},
		{"no header: exponential backoff with jitter", 30 * time.Second, 3, nil,
			[]time.Duration{time.Second + jitter, 2*time.Second + jitter, 4*time.Second + jitter}, true, 4},
		{"backoff stops at the deadline", 4 * time.Second, 9, nil,
			[]time.Duration{time.Second + jitter, 2*time.Second + jitter}, false, 3},
		{"tries are bounded", time.Hour, 20, []string{"Retry-After", "1"},
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}, false, 7},
		{"beyond max wait", time.Hour, 1, []string{"Retry-After", "3600"}, nil, false, 1},
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
					if tc.header == nil {
						raw(429, "")(w, r)
					} else {
						w.Header().Set(tc.header[0], tc.header[1])
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
			// A clock that moves a second per call, so each retry has its
			// own Date; the fake sleep does not move it, so the waits
			// asked for are compared with the real deadline only.
			var clk sync.Mutex
			tick := now
			c := f.client(t, func(cfg *Config) {
				cfg.Now = func() time.Time { clk.Lock(); defer clk.Unlock(); tick = tick.Add(time.Second); return tick }
				cfg.Jitter = func(n time.Duration) time.Duration { return jitter }
			})
			c.SetOffset(0, time.Time{})
			waits := fakeSleep(c)
			if tc.name == "Retry-After HTTP-date" {
				// Duo's date is compared with Duo's time: freeze the clock.
				c.now = func() time.Time { return now }
			}
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
				if !errors.As(err, &u) || u.HTTPStatus != 429 || Classify(err) != ClassUnavailable {
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
			for i := 1; i < len(reqs); i++ {
				if tc.name != "Retry-After HTTP-date" && reqs[i-1].Date == reqs[i].Date {
					t.Error("a retry reused the Date")
				}
				if !reqs[i].Authorized || reqs[i].ContentLength <= 0 || reqs[i].Params.Get("username") != "alice" {
					t.Errorf("retry = %+v, want signed with the full body", reqs[i])
				}
			}
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	type want struct {
		d  time.Duration
		ok bool
	}
	for _, tc := range []struct {
		name, value string
		want        want
	}{
		{"Retry-After", "", want{0, false}},
		{"Retry-After", "0", want{0, true}},
		{"Retry-After", "5", want{5 * time.Second, true}},
		{"X-Retry-After", "6", want{6 * time.Second, true}},
		{"Retry-After", "-1", want{0, false}},
		{"Retry-After", "soon", want{0, false}},
		{"Retry-After", "99999999999999999999", want{0, false}},
		{"Retry-After", "3600", want{MaxRetryAfter + time.Second, true}},
		{"Retry-After", "Tue, 01 Jan 2030 00:00:07 GMT", want{7 * time.Second, true}},
		{"X-Retry-After", "Tue, 01 Jan 2030 00:00:08 GMT", want{8 * time.Second, true}},
		{"Retry-After", "Mon, 31 Dec 2029 23:00:00 GMT", want{0, true}},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set(tc.name, tc.value)
		}
		if d, ok := retryAfter(h, now); d != tc.want.d || ok != tc.want.ok {
			t.Errorf("retryAfter(%s: %q) = %v, %v; want %v", tc.name, tc.value, d, ok, tc.want)
		}
	}
}

// TestUnauthorizedRemeasuresAndResigns: a 401 makes the client measure
// the clock at once with the unsigned ping and re-sign the request with
// Duo's time, once; the offset is reported.
func TestUnauthorizedRemeasuresAndResigns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		skew      time.Duration // the server's clock minus the client's
		bare      bool          // the server answers a bare 401 instead of 40105
		wantClass Class
		wantCalls int // signed calls to check
	}{
		{"skewed clock, 40105", 400 * time.Second, false, ClassNone, 2},
		{"skewed clock, bare 401", -400 * time.Second, true, ClassNone, 2},
		{"wrong key is not retried twice", 0, true, ClassCredentials, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			base := time.Now()
			f.now = func() time.Time { return time.Now().Add(tc.skew) }
			if tc.bare {
				f.handle(PathCheck, func(w http.ResponseWriter, r *http.Request) {
					ok(w, fmt.Sprintf(`{"time":%d}`, f.now().Unix()))
				})
			}
			var reported []time.Duration
			c := f.client(t, func(cfg *Config) {
				cfg.OnResign = func(op string, before, after time.Duration) { reported = append(reported, after) }
				if tc.name == "wrong key is not retried twice" {
					cfg.SecretKey = strings.Repeat("x", 40)
				}
			})
			c.SetOffset(0, base) // measured "now", but wrong
			_, err := c.Check(ctx)
			if got := Classify(err); got != tc.wantClass {
				t.Fatalf("Check: %v (class %s), want class %s", err, got, tc.wantClass)
			}
			signed := 0
			for _, r := range f.requests() {
				if r.Path == PathCheck {
					signed++
				}
			}
			if signed != tc.wantCalls {
				t.Errorf("%d calls to check, want %d", signed, tc.wantCalls)
			}
			if len(reported) != 1 || (reported[0]-tc.skew).Abs() > 2*time.Second {
				t.Errorf("offsets reported = %v, want one near %v", reported, tc.skew)
			}
		})
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
