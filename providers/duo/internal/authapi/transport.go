package authapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signing, sending, retrying and decoding one request.

// validator is implemented by every response type.
type validator interface{ validate() error }

// call makes one API call and decodes the response into out.
//
// A 429 is retried (re-signed with a fresh Date, the full body resent) as
// Duo documents it: after the wait its Retry-After or X-Retry-After header
// asks for (seconds or an HTTP-date), or else after an exponential backoff
// with jitter, up to maxRateLimitTries tries and never past the context's
// deadline; then the call is unavailable.
//
// A signed request answered 401 (any 401: bare, 40101..40105, a body too
// big or cut short) is a clock question before it is a credentials one:
// the offset is measured at once with the unsigned ping and the request
// re-signed with Duo's time, once. A second 401 is the answer; so is the
// first when the re-signed try gets no usable answer (a transport error,
// the deadline, a 5xx, a 429): Duo has already refused the request, and
// an outage afterwards must not turn that refusal into something a
// failmode decides.
//
// Once a status line below 500 other than 429 has arrived, the server has
// answered: a body that is then cut short (the connection closed or reset
// before its Content-Length), stalls until the deadline, or is over the
// cap is a definite malformed *Error, never an *UnavailableError. Only
// when no status line arrived, or it said 5xx or 429, is the call
// unavailable.
func (c *Client) call(ctx context.Context, method, path string, params url.Values, signed bool, out validator) error {
	op := method + " " + path
	resigned := false
	var refused error // the 401 answer that made the client re-sign
	unavailable := func(u *UnavailableError) error {
		if refused != nil {
			return refused
		}
		return u
	}
	for limited := 0; ; {
		status, hdr, body, err := c.do(ctx, method, path, params, signed)
		if err != nil && status == http.StatusTooManyRequests && errors.Is(err, errCutShort) && ctx.Err() == nil {
			// A 429 whose body was cut short is still a 429: its status
			// and headers are all that is used of it (the body is only
			// quoted), so it is retried as any other.
			body, err = nil, nil
		}
		if err == nil && ctx.Err() != nil && !answered(status) {
			// The deadline passed while a 5xx or a 429 came in: too late
			// to retry it, and an outage either way.
			err = errors.New("response arrived after the deadline")
		}
		switch {
		case err != nil && (answered(status) || status == http.StatusTooManyRequests && errors.Is(err, errTooLarge)):
			// The status line arrived below 500: the server answered. A
			// body too big to read, cut short (the connection closed or
			// reset mid-body) or stalled until the deadline leaves nothing
			// to trust, and is still an answer: definite, never an outage
			// (nor, on auth_status, a long poll still waiting).
			err = &Error{HTTPStatus: status, Malformed: true, Message: err.Error()}
		case err != nil:
			if ctx.Err() != nil {
				// Report the context's own error, so that callers can
				// tell a deadline (errors.Is context.DeadlineExceeded).
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return unavailable(&UnavailableError{Op: op, HTTPStatus: status, Err: err})
		case status == http.StatusTooManyRequests:
			wait := c.rateLimitWait(hdr, limited)
			limited++
			fail := failFromBody(status, body)
			fail.RetryAfter = wait
			if limited < maxRateLimitTries && fits(ctx, wait) {
				if err := c.sleep(ctx, wait); err == nil {
					continue
				}
			}
			return unavailable(&UnavailableError{Op: op, HTTPStatus: status, RetryAfter: wait,
				Err: fmt.Errorf("%w (after %d tries)", fail, limited)})
		default:
			// A complete answer below 500 is decoded even if the deadline
			// passed as its last byte came in: it is the server's answer.
			err = decode(op, status, body, out)
			if u := (*UnavailableError)(nil); errors.As(err, &u) {
				return unavailable(u)
			}
		}
		if signed && !resigned && status == http.StatusUnauthorized {
			resigned, refused = true, err
			old, _ := c.Offset()
			if off, perr := c.MeasureOffset(ctx); perr == nil {
				if c.onResign != nil {
					c.onResign(op, old, off)
				}
				continue
			}
		}
		return err
	}
}

// answered reports whether a response with this status line is a definite
// answer whatever its body: a status below 500 other than 429. A 5xx or a
// 429 is an outage (after the retries of a 429).
func answered(status int) bool {
	return status > 0 && status < 500 && status != http.StatusTooManyRequests
}

// errTooLarge: the response body is over the cap.
var errTooLarge = errors.New("response is larger than the cap")

// errCutShort: the status line and headers arrived, but reading the body
// failed: the connection was closed or reset before its end, or the
// deadline passed while it stalled.
var errCutShort = errors.New("body cut short")

// do sends one request and reads the capped body.
func (c *Client) do(ctx context.Context, method, path string, params url.Values, signed bool) (int, http.Header, []byte, error) {
	canon := CanonParams(params)
	u := url.URL{Scheme: "https", Host: c.host, Path: path}
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = canon
	} else {
		// A strings.Reader gives the request a Content-Length, so the
		// body is never sent chunked, and a retry builds a fresh one.
		body = strings.NewReader(canon)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, nil, err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if signed {
		date := FormatDate(c.duoNow())
		req.Header.Set("Date", date)
		req.Header.Set("Authorization", Sign(c.ikey, c.skey, date, method, c.host, path, params))
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Drop the URL, which repeats the query.
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		// Say what happened, never what was read: the count, and the
		// reader's error (unexpected EOF, a reset, the deadline).
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("it stalled until the call ended (%w)", cerr)
		}
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("%w after %d bytes: %w", errCutShort, len(b), err)
	}
	if int64(len(b)) > c.maxBody {
		return resp.StatusCode, nil, nil, fmt.Errorf("%w (%d bytes)", errTooLarge, c.maxBody)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// maxRateLimitTries bounds the tries of one call answered 429: Duo's own
// clients make up to seven.
const maxRateLimitTries = 7

// rateLimitWait is how long to wait after the n-th (from 0) 429 of a call:
// what the server asked for with Retry-After or X-Retry-After (duo_unix
// honours both), or else DefaultRetryAfter doubled per 429, plus up to a
// second of jitter so that many clients limited together do not come back
// together.
func (c *Client) rateLimitWait(h http.Header, n int) time.Duration {
	if d, ok := retryAfter(h, c.duoNow()); ok {
		return d
	}
	return min(DefaultRetryAfter<<min(n, 5), MaxRetryAfter) + c.jitter(time.Second)
}

// retryAfter reads a 429's Retry-After (or, without it, X-Retry-After)
// header: delay-seconds or an HTTP-date (compared with duoNow, Duo's clock
// as best known). ok is false when neither is present and usable.
func retryAfter(h http.Header, duoNow time.Time) (time.Duration, bool) {
	for _, name := range []string{"Retry-After", "X-Retry-After"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n < 0 {
				continue
			}
			if n > int64(MaxRetryAfter/time.Second)+1 {
				return MaxRetryAfter + time.Second, true // beyond any wait honoured
			}
			return time.Duration(n) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(duoNow), 0), true
		}
	}
	return 0, false
}

// fits reports whether waiting d still leaves the context time to retry.
func fits(ctx context.Context, d time.Duration) bool {
	if d > MaxRetryAfter || ctx.Err() != nil {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// envelope is Duo's response wrapper.
type envelope struct {
	Stat     string          `json:"stat"`
	Response json.RawMessage `json:"response"`
	Code     json.RawMessage `json:"code"`
	Message  *string         `json:"message"`
	Detail   *string         `json:"message_detail"`
}

// parseEnvelope decodes exactly one JSON object with a valid stat.
func parseEnvelope(body []byte) (*envelope, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty response body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("response is not a JSON envelope: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("response has data after the JSON envelope")
	}
	switch env.Stat {
	case "OK", "FAIL":
	default:
		return nil, fmt.Errorf("response has stat %q, not OK or FAIL", clean(env.Stat))
	}
	return &env, nil
}

// jsonProblem describes a JSON error without quoting the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "not a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	default:
		return "invalid JSON"
	}
}

// failCode reads a FAIL envelope's code: an integer, or (as golib
// tolerates) an empty string or nothing, which give 0.
func failCode(raw json.RawMessage) (int, error) {
	s := string(bytes.TrimSpace(raw))
	switch s {
	case "", "null", `""`:
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			if n, err = strconv.Atoi(str); err == nil {
				return n, nil
			}
		}
		return 0, errors.New("FAIL response has a malformed code")
	}
	return n, nil
}

// failFromBody builds an *Error from a body that may or may not be a FAIL
// envelope (used for 429s and 5xx, whose body is informative only).
func failFromBody(status int, body []byte) *Error {
	e := &Error{HTTPStatus: status}
	if env, err := parseEnvelope(body); err == nil && env.Stat == "FAIL" {
		e.Code, _ = failCode(env.Code)
		e.Message, e.Detail = deref(env.Message), deref(env.Detail)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return clean(*p)
}

// decode turns a response into out, an *Error (a definite answer), or an
// *UnavailableError (a 5xx, whatever its body). See Classify for the whole
// table.
func decode(op string, status int, body []byte, out validator) error {
	if status >= 500 {
		// A server error, whatever the body says: trying later may work.
		return &UnavailableError{Op: op, HTTPStatus: status, Err: failFromBody(status, body)}
	}
	malformed := func(err error) error {
		return &Error{HTTPStatus: status, Malformed: true, Message: err.Error()}
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return malformed(err)
	}
	if env.Stat == "FAIL" {
		// A malformed code is still a refusal: code 0.
		code, _ := failCode(env.Code)
		return &Error{HTTPStatus: status, Code: code, Message: deref(env.Message), Detail: deref(env.Detail)}
	}
	if status != http.StatusOK {
		return malformed(fmt.Errorf("stat OK with HTTP status %d", status))
	}
	if len(env.Response) == 0 || string(bytes.TrimSpace(env.Response)) == "null" {
		return malformed(errors.New("OK response has no response field"))
	}
	if err := json.Unmarshal(env.Response, out); err != nil {
		return malformed(fmt.Errorf("malformed response: %s", jsonProblem(err)))
	}
	if err := out.validate(); err != nil {
		return malformed(fmt.Errorf("malformed response: %w", err))
	}
	return nil
}
