package sdk

import (
	"errors"
	"fmt"
)

// Kind classifies an error so the host can branch on it across the wire.
type Kind string

// Error kinds.
const (
	// KindInvalidSettings: the admin's settings are wrong; Field names the
	// setting at fault.
	KindInvalidSettings Kind = "invalid_settings"
	// KindInvalidRequest: the caller sent something malformed (not a wrong
	// code, which is a Deny).
	KindInvalidRequest Kind = "invalid_request"
	// KindInvalidState: the state blob cannot be used (corrupt, or from an
	// incompatible version).
	KindInvalidState Kind = "invalid_state"
	// KindUnavailable: the provider or its backend cannot be reached now;
	// trying again later may succeed.
	KindUnavailable Kind = "unavailable"
	// KindNotConfigured: a call that needs settings came before Configure.
	KindNotConfigured Kind = "not_configured"
	// KindInvalidCredentials: the backend rejected the configured
	// credentials (for Duo, "Invalid Integration").
	KindInvalidCredentials Kind = "invalid_credentials"
	// KindClockSkew: the backend rejected the request because this
	// machine's clock is off.
	KindClockSkew Kind = "clock_skew"
	// KindUnsupported: the provider does not offer what was asked (a
	// Challenge of a provider without one, or over protocol version 1).
	KindUnsupported Kind = "unsupported"
	// KindInternal: a bug.
	KindInternal Kind = "internal"
)

// Error is the typed error of the contract. It crosses the plugin wire
// intact: a host receives the same Kind, Field and Message the provider
// returned.
type Error struct {
	Kind    Kind
	Field   string // the setting or request field at fault, if any
	Message string // human-readable, never containing a secret
	// Fix, when set, says what the admin should change (naming the
	// setting). The host shows it with the error without interpreting it.
	Fix string
}

// Error formats the error as "kind: field: message", or "kind: message"
// when no field is at fault.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Kind, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

// Is makes errors.Is(err, &Error{Kind: k}) match any *Error of kind k.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && (t.Field == "" || t.Field == e.Field)
}

// Errorf returns an *Error of the given kind.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an *Error of the given kind about one named field.
func FieldError(kind Kind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of the first *Error in err's chain, or
// KindInternal if there is none, or "" for a nil error.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// WithFix sets the error's Fix and returns the error, so that a provider
// writes sdk.FieldError(...).WithFix("copy ... into ...").
func (e *Error) WithFix(format string, args ...any) *Error {
	e.Fix = fmt.Sprintf(format, args...)
	return e
}
