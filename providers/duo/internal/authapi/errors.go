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

// Error is a FAIL envelope from Duo: {"stat":"FAIL","code":…,"message":…,
// "message_detail":…}. Errors Duo answers with a 5xx status, and 429s that
// could not be retried, are wrapped in an *UnavailableError instead, so
// that IsUnavailable tells every transient failure apart from a definite
// answer.
type Error struct {
	HTTPStatus int    // the response's status code
	Code       int    // Duo's five-digit code; 0 if the reply had none
	Message    string // Duo's message, e.g. "Invalid integration key in request credentials"
	Detail     string // Duo's message_detail, e.g. the name of a bad parameter
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

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// UnavailableError means Duo gave no usable answer: the network failed,
// the context ended, the server answered with a 5xx status, a body that is
// not a valid envelope, a body over the size cap, or a 429 that could not
// be retried within the deadline. Trying again later may succeed.
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
// context's deadline.
func IsTimeout(err error) bool {
	return IsUnavailable(err) && errors.Is(err, context.DeadlineExceeded)
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
