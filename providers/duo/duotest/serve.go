package duotest

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
)

// errGone stands for "no answer": the client went away or the server is
// closing.
var errGone = &duoError{}

// ServeHTTP serves the Auth API. Every request is recorded (Requests),
// then an injected failure (Fail) is applied, then the signature is
// verified for the signed endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	params, perr := readParams(w, r)
	idx := s.record(Request{Method: r.Method, Path: r.URL.Path, Params: cloneValues(params)})
	if f, ok := s.takeFailure(r.URL.Path); ok && s.inject(w, r, idx, f) {
		return
	}
	if perr != nil {
		s.finish(idx, false, perr.code, s.writeFail(w, perr))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/activate/") && r.Method == http.MethodGet {
		s.activatePage(w, r)
		s.finish(idx, false, 0, http.StatusOK)
		return
	}
	rt, ok := routes[r.URL.Path]
	if !ok {
		s.finish(idx, false, errNotFound.code, s.writeFail(w, errNotFound))
		return
	}
	if r.Method != rt.method {
		s.finish(idx, false, errMethod.code, s.writeFail(w, errMethod))
		return
	}
	authorized := false
	if rt.signed {
		if derr := s.authenticate(r, params); derr != nil {
			s.finish(idx, false, derr.code, s.writeFail(w, derr))
			return
		}
		authorized = true
	}
	if ov, ok := s.takeOverride(r.URL.Path); ok {
		writeOK(w, ov)
		s.finish(idx, authorized, 0, http.StatusOK)
		return
	}
	resp, derr := rt.h(s, r, params)
	switch {
	case derr == errGone:
		s.finish(idx, authorized, 0, 0)
		panic(http.ErrAbortHandler) // close the connection without an answer
	case derr != nil:
		s.finish(idx, authorized, derr.code, s.writeFail(w, derr))
	default:
		if raw, isRaw := resp.(rawBody); isRaw {
			w.Header().Set("Content-Type", raw.contentType)
			w.Header().Set("Content-Length", strconv.Itoa(len(raw.data)))
			w.WriteHeader(http.StatusOK)
			w.Write(raw.data)
		} else {
			writeOK(w, resp)
		}
		s.finish(idx, authorized, 0, http.StatusOK)
	}
}

// readParams returns the request's params: the query string for GET, the
// application/x-www-form-urlencoded body (chunked or not) otherwise.
func readParams(w http.ResponseWriter, r *http.Request) (url.Values, *duoError) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return q, &duoError{code: 40002, message: "Invalid request parameters"}
		}
		return q, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		if r.PostForm == nil {
			return url.Values{}, &duoError{code: 40002, message: "Invalid request parameters"}
		}
		return r.PostForm, &duoError{code: 40002, message: "Invalid request parameters"}
	}
	return r.PostForm, nil
}

// authenticate verifies a v2 signature as Duo does, in this order:
// credentials present and decodable (40101), known integration key
// (40102), Date present (40104) and within the skew (40105), signature
// (40103), and an Auth API integration (40301). The Date is taken from the
// Date header, or from X-Duo-Date when Date is absent (as duo_unix sends it).
func (s *Server) authenticate(r *http.Request, params url.Values) *duoError {
	ikey, sig, ok := parseBasic(r.Header.Get("Authorization"))
	if !ok {
		return errMissingCredentials
	}
	s.mu.Lock()
	in, known := s.integrations[ikey]
	now, skew, portless := s.nowLocked(), s.skew, s.portlessHost
	s.mu.Unlock()
	if !known {
		return errInvalidIkey
	}
	date := r.Header.Get("Date")
	if date == "" {
		date = r.Header.Get("X-Duo-Date")
	}
	if date == "" {
		return errMissingDate
	}
	t, err := mail.ParseDate(date)
	if err != nil {
		return errBadDate
	}
	if d := now.Sub(t); d > skew || d < -skew {
		return errBadDate
	}
	host := r.Host
	if portless {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	canon := canonicalV2(date, r.Method, host, r.URL.Path, params)
	if !signatureValid(in.skey, canon, sig) {
		return errInvalidSignature
	}
	if in.kind != kindAuthAPI {
		return errForbidden
	}
	return nil
}

// inject applies an injected failure. It reports whether the request has
// been answered (or abandoned); false means "now answer normally".
func (s *Server) inject(w http.ResponseWriter, r *http.Request, idx int, f Failure) bool {
	if f.Delay > 0 && !s.wait(r.Context(), f.Delay) {
		s.finish(idx, false, 0, 0)
		panic(http.ErrAbortHandler) // the client went away or the server is closing
	}
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				s.finish(idx, false, 0, 0)
				return true
			}
		}
		s.finish(idx, false, 0, 0)
		panic(http.ErrAbortHandler) // not hijackable (HTTP/2): abort the stream
	}
	if f.Response != nil {
		// Answered after authentication, in ServeHTTP.
		s.pushOverride(r.URL.Path, f.Response)
		return false
	}
	if s.injectWild(w, idx, f) {
		return true
	}
	if f.CutShort || f.StallBody {
		s.cutShort(w, r, idx, f) // closes the connection: does not return
	}
	status := f.Status
	if f.Malformed {
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(`{"stat": "OK", "response": {"time": 13`))
		s.finish(idx, false, 0, status)
		return true
	}
	if status == 0 || status == http.StatusOK {
		return false
	}
	e := &duoError{code: status * 100, message: http.StatusText(status)}
	if status == http.StatusTooManyRequests {
		e = &duoError{code: 42901, message: "Too many requests"}
		s.retryAfterHeader(w, f)
	}
	if e.message == "" {
		e.message = "Error"
	}
	if f.EmptyBody {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		s.finish(idx, false, e.code, status)
		return true
	}
	s.finish(idx, false, e.code, s.writeFail(w, e))
	return true
}

// activatePage is what activation_url shows: the code and its QR image.
func (s *Server) activatePage(w http.ResponseWriter, r *http.Request) {
	code := "duo://" + strings.TrimPrefix(r.URL.Path, "/activate/")
	qr := "/frame/qr?value=" + url.QueryEscape(code)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>Duo Mobile activation</title>"+
		"<p>Scan with Duo Mobile:</p><p><img src=\"%s\" alt=\"QR code\"></p><p><code>%s</code></p>",
		html.EscapeString(qr), html.EscapeString(code))
}
