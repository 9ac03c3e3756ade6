package duotest

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Switches for how Duo-like servers written by others answer: bare errors,
// a Host compared without its port, a wider Date window, and (as Failure
// fields) X-Retry-After, HTTP-date Retry-After, FAIL at 200 with non-Duo
// codes, unknown stats, empty or non-JSON 200s, answers that are not
// what the request asks for, and answers whose body is cut short or
// stalls after the status line and headers.

// SetBareErrors makes every FAIL the emulator writes itself (signature,
// key, date and parameter errors) go out with its HTTP status and an empty
// body, as some servers and proxies answer: the client cannot tell a wrong
// secret key from a wrong integration key.
func (s *Server) SetBareErrors(on bool) {
	s.mu.Lock()
	s.bareErrors = on
	s.mu.Unlock()
}

// SetHostWithoutPort makes the emulator check signatures against the Host
// header without its port, as a server behind a front end on another port
// sees it. A client that signs "127.0.0.1:PORT" then gets 40103.
func (s *Server) SetHostWithoutPort(on bool) {
	s.mu.Lock()
	s.portlessHost = on
	s.mu.Unlock()
}

// SetSkewWindow changes the accepted Date skew (Options.Skew), for example
// to duo_unix's mock's ±300 s.
func (s *Server) SetSkewWindow(d time.Duration) {
	if d <= 0 {
		d = DefaultSkew
	}
	s.mu.Lock()
	s.skew = d
	s.mu.Unlock()
}

// override is a Failure.Response waiting for its request to be
// authenticated.
type override struct {
	path string
	resp any
}

func (s *Server) pushOverride(path string, resp any) {
	s.mu.Lock()
	s.overrides = append(s.overrides, override{path: path, resp: resp})
	s.mu.Unlock()
}

// takeOverride returns the Response to answer path with, if inject queued
// one for this request.
func (s *Server) takeOverride(path string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.overrides {
		if o.path == path {
			s.overrides = append(s.overrides[:i:i], s.overrides[i+1:]...)
			return o.resp, true
		}
	}
	return nil, false
}

// retryAfterHeader sets the wait a 429 asks for as f says: Retry-After or
// X-Retry-After, in seconds or as an HTTP-date.
func (s *Server) retryAfterHeader(w http.ResponseWriter, f Failure) {
	if f.RetryAfter <= 0 && !f.RetryAfterDate {
		return
	}
	v := strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds())))
	if f.RetryAfterDate {
		v = s.Now().Add(f.RetryAfter).UTC().Format(http.TimeFormat)
	}
	name := "Retry-After"
	if f.XRetryAfter {
		name = "X-Retry-After"
	}
	w.Header().Set(name, v)
}

// injectWild answers the Failure kinds that replace the body: FailCode,
// Stat and Raw. It reports whether it answered.
func (s *Server) injectWild(w http.ResponseWriter, idx int, f Failure) bool {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	var body []byte
	code := 0
	switch {
	case f.FailCode != 0:
		body, _ = json.Marshal(failEnvelope{Stat: "FAIL", Code: f.FailCode, Message: "Refused by policy"})
		code = f.FailCode
	case f.Stat != "":
		body, _ = json.Marshal(map[string]any{"stat": f.Stat, "message": "Unexpected status"})
	case f.Raw:
		body = []byte(f.RawBody)
	default:
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	s.finish(idx, false, code, status)
	return true
}

// CutBodyStart is the start of the body a CutShort or StallBody answer
// sends before it stops: at 200 a preauth deny, otherwise a proxy's block
// page.
func CutBodyStart(status int) string {
	if status == 0 || status == http.StatusOK {
		return `{"stat":"OK","response":{"result":"deny","status_msg":"Login denied by policy`
	}
	return "<html><head><title>" + strconv.Itoa(status) + "</title></head><body>Blocked by policy"
}

// cutShort answers f.CutShort and f.StallBody: the status line, the
// headers with a Content-Length 4096 bytes longer than what follows, the
// start of the body; then the connection is closed at once (CutShort) or
// once the client gives up or the server closes (StallBody).
func (s *Server) cutShort(w http.ResponseWriter, r *http.Request, idx int, f Failure) {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := f.RawBody
	if body == "" {
		body = CutBodyStart(status)
	}
	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK {
		w.Header().Set("Content-Type", "text/html")
	}
	if status == http.StatusTooManyRequests {
		s.retryAfterHeader(w, f)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+4096))
	w.WriteHeader(status)
	w.Write([]byte(body))
	http.NewResponseController(w).Flush()
	s.finish(idx, false, 0, status)
	if f.StallBody {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}
	panic(http.ErrAbortHandler) // close the connection mid-body
}

// ResetWild ends every switch of WildScenarios: injected failures, bare
// errors, the port-less Host, the skew window and the clock offset. A test
// that runs the scenarios one after another on one emulator calls it
// between them.
func (s *Server) ResetWild() {
	s.mu.Lock()
	s.fails, s.overrides = nil, nil
	s.bareErrors, s.portlessHost = false, false
	s.skew, s.offset = DefaultSkew, 0
	s.mu.Unlock()
}
