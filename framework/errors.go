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
	// CodeStoreUnavailable: the store failed (see ErrStoreUnavailable);
	// the request changed nothing and may be tried again after RetryAfter.
	CodeStoreUnavailable Code = "store_unavailable"
	CodeInternal         Code = "internal"
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

// CodeOf returns ErrorOf(err).Code, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return ErrorOf(err).Code
}

// ErrorOf returns the *Error a caller should be shown for err: one with
// CodeStoreUnavailable (and RetryAfter) when the chain holds
// ErrStoreUnavailable, since the store's failure, not the step that met
// it, is what the caller can act on; else the first *Error in the chain;
// else a CodeInternal error. nil gives nil.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrStoreUnavailable) {
		return &Error{Code: CodeStoreUnavailable, Message: "the store is unavailable; try again shortly",
			Err: err, RetryAfter: StoreRetryAfter}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// ErrStoreUnavailable is in the chain of every error a store returns
// because the storage itself failed (an I/O error, a full disk, a
// read-only or deleted file, a refused or terminated connection, a lock
// or statement timeout) rather than because of what was asked (ErrNotFound,
// ErrConflict, ...). The stores wrap such failures with StoreUnavailable;
// CodeOf and ErrorOf turn any error that carries it into
// CodeStoreUnavailable, whatever the flow wrapped it in, so no call site
// needs to know.
var ErrStoreUnavailable = errors.New("store unavailable")

// StoreRetryAfter is the Retry-After given with CodeStoreUnavailable: long
// enough for a failover or a freed disk, short enough that a client does
// not give up on a store that is back.
const StoreRetryAfter = 5 * time.Second

// StoreUnavailable wraps a storage failure so that errors.Is finds both
// ErrStoreUnavailable and the original error. nil stays nil.
func StoreUnavailable(err error) error {
	if err == nil || errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	return &storeUnavailableError{err: err}
}

type storeUnavailableError struct{ err error }

func (e *storeUnavailableError) Error() string   { return "store unavailable: " + e.err.Error() }
func (e *storeUnavailableError) Unwrap() []error { return []error{ErrStoreUnavailable, e.err} }
