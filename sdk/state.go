package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync"
)

// DecodeState reads a provider's state blob strictly into v: exactly one
// JSON object whose "v" field equals version, no unknown fields, no
// trailing data, at most maxLen bytes. Every problem is an *Error of
// KindInvalidState whose message never quotes the blob, which may hold a
// secret. A state from another version is reported as such (not as having
// unknown fields), so a provider can tell an upgrade from corruption. On
// error, v may have been written in part: use it only after a nil error.
//
// A state is read on every verification, so the blob is parsed once when
// it is well formed: v is decoded strictly, and its own "v" field (an
// integer field tagged json:"v", which every provider's state has) says
// the version. Only a blob that fails that is parsed again, for the version
// alone, to say which of the problems above it has.
func DecodeState(b []byte, version, maxLen int, v any) error {
	if len(b) == 0 {
		return stateErr("empty")
	}
	if len(b) > maxLen {
		return stateErr("longer than %d bytes", maxLen)
	}
	err := decodeStrict(b, version, v)
	if err == nil {
		if got, ok := versionField(v); ok && got == int64(version) && version != 0 {
			return nil
		}
	}
	var probe struct {
		V *int `json:"v"`
	}
	if perr := json.Unmarshal(b, &probe); perr != nil {
		return stateJSONErr(perr, version)
	}
	if probe.V == nil {
		return stateErr("no version")
	}
	if *probe.V != version {
		return stateErr("unsupported version %d (this provider reads version %d)", *probe.V, version)
	}
	if err == nil {
		// The right version, but v has no integer field tagged "v" to
		// read it from: decoded strictly above, and checked by the probe.
		return nil
	}
	return err
}

// decodeStrict decodes b into v: one object, no unknown fields, nothing
// after it.
func decodeStrict(b []byte, version int, v any) error {
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

// versionFields caches, per struct type, the index of its integer field
// tagged json:"v" (-1: none).
var versionFields sync.Map // reflect.Type -> int

// versionField reads v's integer field tagged json:"v", when v is a
// pointer to a struct that has one.
func versionField(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return 0, false
	}
	st := rv.Elem()
	i, ok := versionFields.Load(st.Type())
	if !ok {
		i = versionIndex(st.Type())
		versionFields.Store(st.Type(), i)
	}
	if i.(int) < 0 {
		return 0, false
	}
	return st.Field(i.(int)).Int(), true
}

// versionIndex finds the field the probe's "v" would read: tagged "v" (a
// ",string" option would read another JSON type than the probe does, so
// such a field is not used), exported, of an integer kind.
func versionIndex(t reflect.Type) int {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if (tag == "v" || tag == "v,omitempty") && f.IsExported() && f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64 {
			return i
		}
	}
	return -1
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
