package authapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Duo's error codes. The first three digits are the HTTP status.
const (
	CodeInvalidParams         = 40002 // message_detail names the parameter
	CodeMissingCredentials    = 40101
	CodeInvalidIntegrationKey = 40102 // wrong ikey, or an ikey of another application type
	CodeInvalidSignature      = 40103 // wrong skey, wrong host, or badly encoded params
	CodeMissingTimestamp      = 40104
	CodeBadTimestamp          = 40105 // the Date is too far from Duo's clock
	CodeForbidden             = 40301 // valid keys of an application that may not use the Auth API
	CodeRateLimited           = 42901
)

// Error is a definite answer that is not a success: a FAIL envelope from
// Duo ({"stat":"FAIL","code":…,"message":…,"message_detail":…}) at any
// status below 500, or any other answer below 500 that is not a valid
// success for the request (Malformed: a bare 401, an HTML 404, an empty
// 200, an async auth without a txid, a body cut short or stalled after a
// status below 500). Errors Duo answers with a 5xx
// status, and 429s that could not be retried, are wrapped in an
// *UnavailableError instead, so that IsUnavailable tells every transient
// failure apart from a definite answer. Classify sorts them further.
type Error struct {
	HTTPStatus int    // the response's status code
	Code       int    // Duo's five-digit code; 0 if the reply had none
	Message    string // Duo's message, e.g. "Invalid integration key in request credentials"
	Detail     string // Duo's message_detail, e.g. the name of a bad parameter
	// Malformed: the answer was not a FAIL envelope, nor a valid success
	// (Message says what was wrong with it).
	Malformed bool
	// RetryAfter is the wait the server asked for with a 429's Retry-After
	// header (or the default wait when it gave none).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("duo: ")
	if e.Code != 0 {
		fmt.Fprintf(&b, "%d ", e.Code)
	}
	if e.Malformed {
		b.WriteString("malformed answer: ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString("request failed")
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " [HTTP %d]", e.HTTPStatus)
	return b.String()
}

// IsInvalidIntegrationKey reports code 40102: Duo does not know the
// integration key, or it belongs to an application of another type.
func (e *Error) IsInvalidIntegrationKey() bool { return e.Code == CodeInvalidIntegrationKey }

// IsInvalidSignature reports code 40103: the secret key is wrong, or the
// request was signed for another host name than the one Duo answers as.
func (e *Error) IsInvalidSignature() bool { return e.Code == CodeInvalidSignature }

// IsBadTimestamp reports codes 40104 and 40105: the request's Date was
// missing or too far from Duo's clock.
func (e *Error) IsBadTimestamp() bool {
	return e.Code == CodeBadTimestamp || e.Code == CodeMissingTimestamp
}

// IsForbidden reports code 40301: valid keys of an application that may
// not call this API (a Web SDK / Universal Prompt or Admin API
// application used with the Auth API).
func (e *Error) IsForbidden() bool { return e.Code == CodeForbidden }

// Class is what a failed call means for the caller; see Classify.
type Class int

// Classes, from Classify.
const (
	// ClassNone: no error.
	ClassNone Class = iota
	// ClassUnavailable: Duo gave no usable answer (a transport error or
	// the deadline before any status line, a 5xx, a 429 after the
	// retries). Only this class may be left to a failmode.
	ClassUnavailable
	// ClassCredentials: a 401 (bare or 40101/40102/40103, after the
	// re-signed retry), a 40301, or a bare 403: the integration key, the
	// secret key, the API hostname or the application type is wrong.
	ClassCredentials
	// ClassClock: 40104 or 40105 (after the re-signed retry): the
	// request's time was refused.
	ClassClock
	// ClassRefused: any other definite answer: another 4xx, a FAIL at any
	// status below 500, a 200 that is malformed or not what the request
	// asks for. Never a failmode allow.
	ClassRefused
	// ClassInternal: the call was not made (a bad argument: a bug).
	ClassInternal
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassUnavailable:
		return "unavailable"
	case ClassCredentials:
		return "credentials"
	case ClassClock:
		return "clock"
	case ClassRefused:
		return "refused"
	}
	return "internal"
}

// Classify sorts an error of this package into the class the caller acts
// on. The table, in order:
//
//	transport error, deadline, before any status line      unavailable
//	HTTP 5xx (any body, even cut short or stalled)         unavailable
//	HTTP 429 after the retries                             unavailable
//	code 40104 or 40105 (any status)                       clock
//	HTTP 401 (any body), code 401xx, code 40301, bare 403  credentials
//	anything else: other 4xx, 1xx/3xx, FAIL at 200,
//	  malformed or unexpected 200                          refused
//
// Below 500 (but 429) the status line is the answer: a body that is then
// too big, cut short (the connection closed or reset) or stalled until
// the deadline makes the answer malformed, sorted by its status as any
// other malformed answer (a bare 401 or 403 is credentials, the rest
// refused), never unavailable.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	if IsUnavailable(err) {
		return ClassUnavailable
	}
	e, ok := AsError(err)
	if !ok {
		return ClassInternal
	}
	switch {
	case e.IsBadTimestamp():
		return ClassClock
	case e.HTTPStatus == 401, e.Code/100 == 401, e.IsForbidden(), e.HTTPStatus == 403 && e.Code == 0:
		return ClassCredentials
	}
	return ClassRefused
}

// IsBare reports an error answer that says nothing about its cause: no
// FAIL envelope, or one without a code (a bare 401).
func (e *Error) IsBare() bool { return e.Code == 0 }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// UnavailableError means Duo gave no usable answer: the network failed or
// the context ended before a status line arrived, the server answered
// with a 5xx status (whatever its body, complete or not), or a 429 could
// not be retried within the deadline. Trying again later may succeed.
type UnavailableError struct {
	Op         string        // e.g. "POST /auth/v2/auth"
	HTTPStatus int           // 0 when no response arrived
	RetryAfter time.Duration // from a 429, else 0
	Err        error         // the cause; an *Error when Duo sent a FAIL envelope
}

func (e *UnavailableError) Error() string {
	var b strings.Builder
	b.WriteString("duo unavailable: ")
	b.WriteString(e.Op)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err means Duo could not be reached or gave
// no usable answer (see UnavailableError).
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// IsTimeout reports whether err is an UnavailableError caused by the
// context's deadline before any status line arrived: the server said
// nothing at all. A deadline met while the body of a 5xx or a 429 came in
// is unavailable but no timeout (the server answered, with an outage); one
// met while the body of any other status came in is a definite *Error.
func IsTimeout(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u) && u.HTTPStatus == 0 && errors.Is(err, context.DeadlineExceeded)
}

// maxMessageLen bounds the server-supplied text kept in an error.
const maxMessageLen = 300

// clean makes server-supplied text safe to put in an error or a log line:
// control characters become spaces and the length is capped.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
