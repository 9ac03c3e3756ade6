package duotest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// DefaultSkew is the Date skew the emulator accepts when Options.Skew is 0:
// Duo's documented tolerance.
const DefaultSkew = 60 * time.Second

// PushTimeout is how long an unanswered push (or phone call) stays
// "waiting" on the emulator clock before it is denied with status "timeout".
const PushTimeout = 60 * time.Second

// maxBody caps request bodies, as any real API front end does.
const maxBody = 1 << 20

// Options configure an emulator.
type Options struct {
	Now  func() time.Time // the emulator's clock; time.Now when nil
	Skew time.Duration    // accepted Date skew, default 60s (Duo's documented tolerance)
}

// Request is one request the emulator received, as Requests reports it.
type Request struct {
	Method     string
	Path       string
	Params     url.Values // query string (GET) or form body (POST)
	Authorized bool       // the request carried a valid signature of an Auth API integration
	Code       int        // the Duo error code returned (42901, 50000 … for injected failures), 0 if OK
	Status     int        // the HTTP status written; 0 when the connection was dropped or the client went away
	Time       time.Time  // arrival, on the emulator clock
}

// Failure is an injected failure; see Server.Fail.
type Failure struct {
	Path       string        // e.g. "/auth/v2/auth"; "" = any
	Status     int           // 429, 500, 503 ...; 0 = normal status
	RetryAfter time.Duration // sets Retry-After (seconds) on a 429
	Malformed  bool          // 200 (or Status) with a body that is truncated JSON
	Delay      time.Duration // real wall-clock delay before answering (honours request context cancellation)
	Drop       bool          // close the connection without answering (hijack)

	// Answers seen from Duo-like servers in the wild (wild.go).

	// EmptyBody sends the error at Status with no body at all.
	EmptyBody bool
	// XRetryAfter sends RetryAfter as X-Retry-After instead of
	// Retry-After; RetryAfterDate sends it as an HTTP-date (the emulator
	// clock plus RetryAfter).
	XRetryAfter, RetryAfterDate bool
	// FailCode answers a FAIL envelope with this code (any number, such
	// as a non-Duo 1000) at Status, 200 when Status is 0.
	FailCode int
	// Stat answers {"stat": Stat} at 200: a stat that is neither OK nor
	// FAIL, such as "BAD_STATUS".
	Stat string
	// Raw answers RawBody verbatim at Status, 200 when Status is 0: an
	// empty or non-JSON success.
	Raw     bool
	RawBody string
	// Response answers {"stat":"OK","response":Response} at 200 in place
	// of the real answer, after the request was authenticated: an async
	// auth answered with a result, an allow without status_msg.
	Response any
	// CutShort sends the status line (Status, 200 when 0) and headers
	// with a Content-Length that promises more than is sent, the start of
	// the body (RawBody, else CutBodyStart(Status)), and closes the
	// connection mid-body: a server or a proxy that dies while answering,
	// a connection reset. Requests records the status.
	CutShort bool
	// StallBody sends the same as CutShort, then nothing more until the
	// client gives up or the server closes: a body that stalls past the
	// client's timeout.
	StallBody bool
}

type failRule struct {
	f    Failure
	left int
}

type appKind int

const (
	kindAuthAPI appKind = iota
	kindWebSDK
)

type integration struct {
	ikey, skey string
	kind       appKind
}

// Server is a Duo Auth API emulator on https://127.0.0.1:PORT.
type Server struct {
	ts        *httptest.Server
	host      string
	nowFn     func() time.Time
	skew      time.Duration
	done      chan struct{}
	closeOnce sync.Once

	mu           sync.Mutex
	offset       time.Duration
	ikey, skey   string
	integrations map[string]integration
	users        map[string]*user // by user_id
	byName       map[string]*user // by username
	enrollments  map[string]*enrollment
	txns         map[string]*txn
	fails        []*failRule
	reqs         []Request
	remember     time.Duration        // Remembered Devices policy; 0 is off (trusted.go)
	bareErrors   bool                 // FAIL answers go out without a body (wild.go)
	portlessHost bool                 // signatures are checked against Host without its port (wild.go)
	overrides    []override           // Failure.Response answers waiting for their request (wild.go)
	trusted      map[[32]byte]trusted // issued trusted_device_tokens by SHA-256

	// test hooks, called outside the lock with a copy of the record: after
	// a request is recorded and after its outcome is known.
	onReceived, onDone func(Request)
	onWaiting          func() // a synchronous push starts waiting
}

// Start starts an emulator with TLS on 127.0.0.1 and an Auth API
// integration (see Integration).
func Start(opts Options) (*Server, error) {
	s := &Server{
		nowFn:        opts.Now,
		skew:         opts.Skew,
		done:         make(chan struct{}),
		integrations: map[string]integration{},
		users:        map[string]*user{},
		byName:       map[string]*user{},
		enrollments:  map[string]*enrollment{},
		txns:         map[string]*txn{},
	}
	if s.nowFn == nil {
		s.nowFn = time.Now
	}
	if s.skew <= 0 {
		s.skew = DefaultSkew
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	s.ts = ts
	s.host = ln.Addr().String()
	s.ikey, s.skey = s.addIntegration(kindAuthAPI)
	return s, nil
}

// Close stops the server: requests that are waiting (a Delay, a synchronous
// push) are released and Close returns once every handler has finished.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ts.Close()
	})
}

// Host is the api_hostname a client uses and signs: "127.0.0.1:PORT".
func (s *Server) Host() string { return s.host }

// URL is "https://" + Host().
func (s *Server) URL() string { return "https://" + s.host }

// Certificate is the emulator's self-signed TLS certificate.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// CertPool trusts the emulator's TLS certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ts.Certificate())
	return p
}

// Integration returns the Auth API integration created at Start.
func (s *Server) Integration() (ikey, skey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ikey, s.skey
}

// AddWebSDKIntegration creates valid keys of another application type (Web
// SDK): correctly signed calls to /auth/v2/* with them get 40301.
func (s *Server) AddWebSDKIntegration() (ikey, skey string) {
	return s.addIntegration(kindWebSDK)
}

func (s *Server) addIntegration(kind appKind) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		ikey := "DI" + randString(18, upperAlnum)
		if _, dup := s.integrations[ikey]; dup {
			continue
		}
		skey := randString(40, mixedAlnum)
		s.integrations[ikey] = integration{ikey: ikey, skey: skey, kind: kind}
		return ikey, skey
	}
}

// SetClockOffset sets the emulator's clock to Options.Now() + d (a host
// clock that is off, seen from the client's side).
func (s *Server) SetClockOffset(d time.Duration) {
	s.mu.Lock()
	s.offset = d
	s.mu.Unlock()
}

// Now is the emulator's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time { return s.nowFn().Add(s.offset) }

// Fail makes the next n requests (to f.Path, or to any path when it is
// empty) fail as f says. Rules are applied first-in first-out: a request
// consumes one use of the oldest rule that matches it. A Failure with only
// a Delay answers normally after the delay.
//
// Note that Go's http.Transport silently retries an idempotent request (GET)
// once when a reused keep-alive connection is dropped, so a Drop of a GET
// may consume two uses.
func (s *Server) Fail(n int, f Failure) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.fails = append(s.fails, &failRule{f: f, left: n})
	s.mu.Unlock()
}

func (s *Server) takeFailure(path string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.fails {
		if r.f.Path != "" && r.f.Path != path {
			continue
		}
		r.left--
		if r.left <= 0 {
			s.fails = append(s.fails[:i:i], s.fails[i+1:]...)
		}
		return r.f, true
	}
	return Failure{}, false
}

// Requests returns every request received so far, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Params = cloneValues(r.Params)
		out[i] = r
	}
	return out
}

func (s *Server) record(r Request) int {
	s.mu.Lock()
	r.Time = s.nowLocked()
	s.reqs = append(s.reqs, r)
	i, hook := len(s.reqs)-1, s.onReceived
	s.mu.Unlock()
	if hook != nil {
		r.Params = cloneValues(r.Params)
		hook(r)
	}
	return i
}

func (s *Server) finish(i int, authorized bool, code, status int) {
	s.mu.Lock()
	s.reqs[i].Authorized = authorized
	s.reqs[i].Code = code
	s.reqs[i].Status = status
	r, hook := s.reqs[i], s.onDone
	s.mu.Unlock()
	if hook != nil {
		r.Params = cloneValues(r.Params)
		hook(r)
	}
}

// wait blocks for d of real time; false if the client went away or the
// server is closing first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// duoError is a FAIL envelope; the HTTP status is code/100.
type duoError struct {
	code    int
	message string
	detail  string
}

func paramError(name string) *duoError {
	return &duoError{code: 40002, message: "Invalid request parameters", detail: name}
}

var (
	errMissingCredentials = &duoError{code: 40101, message: "Missing request credentials"}
	errInvalidIkey        = &duoError{code: 40102, message: "Invalid integration key in request credentials"}
	errInvalidSignature   = &duoError{code: 40103, message: "Invalid signature in request credentials"}
	errMissingDate        = &duoError{code: 40104, message: "Missing request timestamp"}
	errBadDate            = &duoError{code: 40105, message: "Bad request timestamp"}
	errForbidden          = &duoError{code: 40301, message: "Access forbidden"}
	errNotFound           = &duoError{code: 40400, message: "Resource not found"}
	errMethod             = &duoError{code: 40500, message: "Method not allowed"}
)

// rawBody is a non-JSON success answer (logo, QR code).
type rawBody struct {
	contentType string
	data        []byte
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"stat":"FAIL","code":50000,"message":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// okEnvelope and failEnvelope keep Duo's field order.
type okEnvelope struct {
	Stat     string `json:"stat"`
	Response any    `json:"response"`
}

type failEnvelope struct {
	Stat          string `json:"stat"`
	Code          int    `json:"code"`
	Message       string `json:"message"`
	MessageDetail string `json:"message_detail,omitempty"`
}

func writeOK(w http.ResponseWriter, resp any) {
	writeJSON(w, http.StatusOK, okEnvelope{Stat: "OK", Response: resp})
}

func (s *Server) writeFail(w http.ResponseWriter, e *duoError) int {
	status := httpStatus(e.code)
	s.mu.Lock()
	bare := s.bareErrors
	s.mu.Unlock()
	if bare {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return status
	}
	writeJSON(w, status, failEnvelope{Stat: "FAIL", Code: e.code, Message: e.message, MessageDetail: e.detail})
	return status
}

// httpStatus is the first three digits of a Duo error code.
func httpStatus(code int) int {
	for code >= 1000 {
		code /= 10
	}
	return code
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return url.Values{}
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	mixedAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// randString draws n characters uniformly from alphabet with crypto/rand.
func randString(n int, alphabet string) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
