package framework

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// Code classifies a framework error so a caller (the HTTP service, or a
// host application embedding the framework) can branch on it.
type Code string

// Error codes.
const (
	CodeInvalidRequest      Code = "invalid_request"
	CodeUnknownProvider     Code = "unknown_provider"
	CodeAudienceNotAllowed  Code = "audience_not_allowed"
	CodeNotEnrolled         Code = "not_enrolled"
	CodeAlreadyEnrolled     Code = "already_enrolled"
	CodeNotFound            Code = "not_found"
	CodeProviderUnavailable Code = "provider_unavailable"
	// CodeProviderTimeout: the provider did not answer within its
	// deadline (providers.NAME.timeout); no decision was made.
	CodeProviderTimeout Code = "provider_timeout"
	CodeConflict        Code = "conflict"
	CodeLockedOut       Code = "locked_out"
	CodeInternal        Code = "internal"
)

// Error is the typed error of the framework's flows.
type Error struct {
	Code    Code
	Message string // safe to show to a caller: no secret, no code, no state
	Err     error  // the cause, for logs; may be nil
	// RetryAfter, for CodeLockedOut, is how long until the next attempt is
	// allowed.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches any *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func errorf(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// CodeOf returns the Code of the first *Error in err's chain, CodeInternal
// for any other error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
