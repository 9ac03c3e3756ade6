package supervisor

import (
	"errors"
	"fmt"
)

// Kind classifies a supervisor error so the framework can translate it.
type Kind int

// Kinds of supervisor errors.
const (
	// KindUnavailable: the plugin is down (crashed, failed to start, in
	// its restart backoff) or stopped answering.
	KindUnavailable Kind = iota + 1
	// KindTimeout: the call missed its deadline.
	KindTimeout
	// KindHung: the plugin process stopped answering its health pings and
	// was killed.
	KindHung
	// KindStopped: the provider was shut down.
	KindStopped
)

func (k Kind) String() string {
	switch k {
	case KindUnavailable:
		return "unavailable"
	case KindTimeout:
		return "timeout"
	case KindHung:
		return "hung"
	case KindStopped:
		return "stopped"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a supervisor's failure to get an answer from a provider. It
// never carries a request's content, only what happened to the process.
type Error struct {
	Provider string
	Kind     Kind
	Message  string
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("provider %q %s: %v", e.Provider, e.Message, e.Err)
	}
	return fmt.Sprintf("provider %q %s", e.Provider, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func newError(provider string, kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Provider: provider, Kind: kind, Message: fmt.Sprintf(format, args...), Err: cause}
}

// ErrRetired: the provider was replaced by a configuration reload while
// this call held it; the caller moves to its successor.
var ErrRetired = errors.New("provider replaced by a configuration reload")

// ErrNotThisProvider: the binary says it is another provider.
var ErrNotThisProvider = errors.New("wrong provider binary")
