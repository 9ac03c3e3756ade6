package sdk

import (
	"bytes"
	"encoding/json"
	"errors"

	"io"
)

// DecodeState reads a provider's state blob strictly into v: exactly one
// JSON object whose "v" field equals version, no unknown fields, no
// trailing data, at most maxLen bytes. Every problem is an *Error of
// KindInvalidState whose message never quotes the blob, which may hold a
// secret. A state from another version is reported as such (not as having
// unknown fields), so a provider can tell an upgrade from corruption.
func DecodeState(b []byte, version, maxLen int, v any) error {
	if len(b) == 0 {
		return stateErr("empty")
	}
	if len(b) > maxLen {
		return stateErr("longer than %d bytes", maxLen)
	}
	var probe struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return stateJSONErr(err, version)
	}
	if probe.V == nil {
		return stateErr("no version")
	}
	if *probe.V != version {
		return stateErr("unsupported version %d (this provider reads version %d)", *probe.V, version)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return stateJSONErr(err, version)
	}
	if _, err := dec.Token(); err != io.EOF {
		return stateErr("trailing data after the JSON object")
	}
	return nil
}

func stateErr(format string, args ...any) error {
	return Errorf(KindInvalidState, "state: "+format, args...)
}

// stateJSONErr describes a decoding error without the decoder's own text,
// which can quote bytes of the state.
func stateJSONErr(err error, version int) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return stateErr("not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return stateErr("field %q has the wrong type", typ.Field)
	case errors.As(err, &typ):
		return stateErr("not a JSON object")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return stateErr("truncated JSON")
	}
	// DisallowUnknownFields reports an unknown field this way.
	return stateErr("not a version %d state object", version)
}
