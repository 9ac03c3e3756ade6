package main

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"io"

	"github.com/twofactor/twofactor/sdk"
)

// stateVersion is the version of the state format written by marshal.
const stateVersion = 1

// Bounds checked when reading a state, so that a state this provider
// wrote is always one it accepts and no arithmetic on a counter overflows.
const (
	maxStateLen    = 1024
	minSecretBytes = 16 // RFC 4226 R6: at least 128 bits
	maxSecretBytes = 64
	maxCounter     = 1 << 62
)

// stateV1 is the JSON form of an enrollment, for example
//
//	{"v":1,"secret":"GEZDGNBVGY3TQOJQ...","digits":6,"counter":41}
//
// The host stores it encrypted and versioned; the provider never sees
// another user's state and keeps nothing between calls.
type stateV1 struct {
	V      int    `json:"v"`
	Secret string `json:"secret"` // unpadded upper-case base32, as in the otpauth URL
	Digits int    `json:"digits"`
	// Counter is the counter of the last accepted code; -1 before the
	// first (a new token's first code uses counter 0).
	Counter int64 `json:"counter"`
	// Pending is the counter of a code seen beyond the look-ahead window:
	// the next code must be for Pending+1 to resynchronise.
	Pending *int64 `json:"pending,omitempty"`
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// enrollment is a parsed, checked state.
type enrollment struct {
	secret     []byte
	digits     int
	counter    int64
	pending    int64
	hasPending bool
}

func (e *enrollment) marshal() []byte {
	s := stateV1{V: stateVersion, Secret: b32.EncodeToString(e.secret), Digits: e.digits, Counter: e.counter}
	if e.hasPending {
		s.Pending = &e.pending
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic("hotp: marshalling state: " + err.Error()) // strings and integers cannot fail
	}
	return b
}

func stateError(format string, args ...any) error {
	return sdk.Errorf(sdk.KindInvalidState, "state: "+format, args...)
}

// parseState reads a state strictly: anything this version did not write
// is refused. Messages never quote the state, which holds the secret.
func parseState(b []byte) (*enrollment, error) {
	if len(b) == 0 || len(b) > maxStateLen {
		return nil, stateError("empty or longer than %d bytes", maxStateLen)
	}
	var s stateV1
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, stateError("not a version %d HOTP state", stateVersion)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, stateError("trailing data after the JSON object")
	}
	if s.V != stateVersion {
		return nil, stateError("unsupported version %d (this provider reads version %d)", s.V, stateVersion)
	}
	secret, err := b32.DecodeString(s.Secret)
	if err != nil || b32.EncodeToString(secret) != s.Secret {
		return nil, stateError("secret is not unpadded upper-case base32")
	}
	if len(secret) < minSecretBytes || len(secret) > maxSecretBytes {
		return nil, stateError("secret is %d bytes, outside [%d, %d]", len(secret), minSecretBytes, maxSecretBytes)
	}
	if s.Digits != 6 && s.Digits != 8 {
		return nil, stateError("digits %d is not 6 or 8", s.Digits)
	}
	if s.Counter < -1 || s.Counter > maxCounter {
		return nil, stateError("counter is out of range")
	}
	e := &enrollment{secret: secret, digits: s.Digits, counter: s.Counter}
	if s.Pending != nil {
		if *s.Pending <= s.Counter || *s.Pending > maxCounter {
			return nil, stateError("pending counter is out of range")
		}
		e.pending, e.hasPending = *s.Pending, true
	}
	return e, nil
}
