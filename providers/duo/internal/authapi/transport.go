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

// call makes one API call and decodes the response into out. A 429 is
// retried once, with a fresh Date and signature and the full body, when
// the wait it asks for ends before the context's deadline.
func (c *Client) call(ctx context.Context, method, path string, params url.Values, signed bool, out validator) error {
	op := method + " " + path
	for attempt := 0; ; attempt++ {
		status, hdr, body, err := c.do(ctx, method, path, params, signed)
		if err == nil && ctx.Err() != nil {
			// The deadline passed while the answer came in: too late.
			err = errors.New("response arrived after the deadline")
		}
		if err != nil {
			if ctx.Err() != nil {
				// Report the context's own error, so that callers can
				// tell a deadline (errors.Is context.DeadlineExceeded).
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return &UnavailableError{Op: op, HTTPStatus: status, Err: err}
		}
		if status == http.StatusTooManyRequests {
			wait := retryAfter(hdr, c.duoNow())
			fail := failFromBody(status, body)
			fail.RetryAfter = wait
			if attempt == 0 && fits(ctx, wait) {
				if err := c.sleep(ctx, wait); err == nil {
					continue
				}
			}
			return &UnavailableError{Op: op, HTTPStatus: status, RetryAfter: wait, Err: fail}
		}
		return decode(op, status, body, out)
	}
}

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
		return resp.StatusCode, nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(b)) > c.maxBody {
		return resp.StatusCode, nil, nil, fmt.Errorf("response is larger than %d bytes", c.maxBody)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// retryAfter reads a 429's Retry-After header: delay-seconds or an
// HTTP-date (compared with duoNow, Duo's clock as best known).
func retryAfter(h http.Header, duoNow time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return DefaultRetryAfter
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return DefaultRetryAfter
		}
		if n > int64(MaxRetryAfter/time.Second)+1 {
			return MaxRetryAfter + time.Second // beyond any wait honoured
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(duoNow)
		if d < 0 {
			return 0
		}
		return d
	}
	return DefaultRetryAfter
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
// envelope (used for 429s, whose body is informative only).
func failFromBody(status int, body []byte) *Error {
	e := &Error{HTTPStatus: status}
	if env, err := parseEnvelope(body); err == nil && env.Stat == "FAIL" {
		e.Code, _ = failCode(env.Code)
		e.Message, e.Detail = deref(env.Message), deref(env.Detail)
	}
	if e.Message == "" {
		e.Message = "Too many requests"
	}
	return e
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return clean(*p)
}

// decode turns a response into out, an *Error, or an *UnavailableError.
func decode(op string, status int, body []byte, out validator) error {
	unavailable := func(err error) error {
		return &UnavailableError{Op: op, HTTPStatus: status, Err: err}
	}
	env, err := parseEnvelope(body)
	if err != nil {
		if status != http.StatusOK {
			return unavailable(fmt.Errorf("unexpected HTTP status %d: %v", status, err))
		}
		return unavailable(err)
	}
	if env.Stat == "FAIL" {
		code, err := failCode(env.Code)
		if err != nil {
			return unavailable(err)
		}
		e := &Error{HTTPStatus: status, Code: code, Message: deref(env.Message), Detail: deref(env.Detail)}
		if status >= 500 || code == 0 || code >= 50000 {
			// A server error, or a FAIL that says nothing (duo_unix
			// treats it as a server error too).
			return unavailable(e)
		}
		return e
	}
	if status != http.StatusOK {
		return unavailable(fmt.Errorf("stat OK with HTTP status %d", status))
	}
	if len(env.Response) == 0 || string(bytes.TrimSpace(env.Response)) == "null" {
		return unavailable(errors.New("OK response has no response field"))
	}
	if err := json.Unmarshal(env.Response, out); err != nil {
		return unavailable(fmt.Errorf("malformed response: %s", jsonProblem(err)))
	}
	if err := out.validate(); err != nil {
		return unavailable(fmt.Errorf("malformed response: %w", err))
	}
	return nil
}
