package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// fuzzState has the shapes providers' states use: strings, integers, an
// optional counter, a list, a map and a nested object.
type fuzzState struct {
	V       int               `json:"v"`
	Secret  string            `json:"secret"`
	Digits  int               `json:"digits"`
	Counter int64             `json:"counter"`
	Pending *int64            `json:"pending,omitempty"`
	Used    []int64           `json:"used,omitempty"`
	Devices map[string]string `json:"devices,omitempty"`
	Inner   *struct {
		TxID    string `json:"txid"`
		Expires uint32 `json:"expires"`
	} `json:"inner,omitempty"`
}

// stateMessages are every message DecodeState may give. None has room for
// a byte of the blob: a field is named only by the struct's JSON names.
var stateMessages = regexp.MustCompile(`^state: (empty|longer than \d+ bytes|no version|` +
	`unsupported version -?\d+ \(this provider reads version 1\)|not valid JSON \(at byte \d+\)|` +
	`field "(secret|digits|counter|pending|used|devices|inner|inner\.txid|inner\.expires|v)" has the wrong type|` +
	`not a JSON object|truncated JSON|not a version 1 state object|trailing data after the JSON object)$`)

const fuzzMaxLen = 512

// FuzzDecodeState feeds arbitrary blobs to DecodeState. It must not
// panic; a refusal is an *Error of KindInvalidState with one of the fixed
// messages (never quoting the blob, which may hold a secret); an accepted
// blob is of the version asked, within the length, and its value survives
// a round trip.
func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"secret":"JBSWY3DPEHPK3PXP","digits":6,"counter":41}`,
		`{"v":1,"secret":"JBSWY3DPEHPK3PXP","digits":6,"counter":41,"pending":52,"used":[1,2],"devices":{"a":"b"},"inner":{"txid":"t","expires":9}}`,
		`{"v":1,"pending":null,"inner":null,"used":null,"devices":null}`,
		`{"v":2,"secret":"JBSWY3DPEHPK3PXP"}`,
		`{"v":-1}`, `{"v":1.0}`, `{"v":"1"}`, `{"v":99999999999999999999}`, `{"V":1}`,
		`{"v":1,"v":2}`, `{"v":2,"v":1}`,
		`{"v":1,"secret":42}`, `{"v":1,"inner":{"txid":7}}`, `{"v":1,"inner":{"expires":-1}}`,
		`{"v":1,"devices":{"JBSWY3DPEHPK3PXP":1}}`, `{"v":1,"used":["JBSWY3DPEHPK3PXP"]}`,
		`{"v":1,"extra":"JBSWY3DPEHPK3PXP"}`, `{"v":1,"JBSWY3DPEHPK3PXP":1}`,
		`{"v":1} {}`, `{"v":1}x`, `{"v":1`, `{"v":1,"secret":"\ud800"}`, "{\"v\":1,\"secret\":\"\xff\"}",
		`[1]`, `null`, `"v"`, `1`, ``, ` `, `{}`,
		`{"v":1,"secret":"` + strings.Repeat("A", fuzzMaxLen) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v fuzzState
		err := DecodeState(b, 1, fuzzMaxLen, &v)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidState || e.Field != "" {
				t.Fatalf("DecodeState(%q) = %#v, want an *Error of kind invalid_state", b, err)
			}
			if !stateMessages.MatchString(e.Message) {
				t.Fatalf("DecodeState(%q): unexpected message %q", b, e.Message)
			}
			return
		}
		if len(b) > fuzzMaxLen || v.V != 1 {
			t.Fatalf("DecodeState accepted %q (%d bytes) as version %d", b, len(b), v.V)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", v, err)
		}
		if len(again) > fuzzMaxLen {
			return // escaping (<, >, &) can lengthen it
		}
		var w fuzzState
		if err := DecodeState(again, 1, fuzzMaxLen, &w); err != nil {
			t.Fatalf("round trip of %q: %s gives %v", b, again, err)
		}
		// Compared as JSON: an empty map or list comes back as none.
		if twice, _ := json.Marshal(w); !bytes.Equal(twice, again) {
			t.Fatalf("round trip of %q: %s, then %s", b, again, twice)
		}
	})
}

// decodeStateTwoPass is DecodeState as it was before it parsed a well
// formed blob once: the version probed first, then the strict decode. The
// one-pass version must answer every blob as it did.
func decodeStateTwoPass(b []byte, version, maxLen int, v any) error {
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
	return decodeStrict(b, version, v)
}

// unversioned is a state type without a field for "v": DecodeState falls
// back to probing the version.
type unversioned struct {
	Secret string `json:"secret"`
}

// FuzzDecodeStateOnePass: DecodeState gives every blob the answer the two
// pass version gave (the same error message, or the same value), for a
// state type with a "v" field and for one without.
func FuzzDecodeStateOnePass(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"secret":"JBSWY3DPEHPK3PXP","digits":6,"counter":41}`,
		`{"v":2,"secret":"x"}`, `{"v":0}`, `{"V":1}`, `{"v":1,"v":2}`, `{"v":2,"v":1}`,
		`{"v":1,"extra":1}`, `{"v":2,"extra":1}`, `{"secret":"x"}`, `{"v":1} {}`, `{"v":1,"secret":7}`,
		`{"v":1,"secret":"x"}`, `{"secret":"x","v":1}`, `[1]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, version uint8) {
		var got, want fuzzState
		gotErr := DecodeState(b, int(version), fuzzMaxLen, &got)
		wantErr := decodeStateTwoPass(b, int(version), fuzzMaxLen, &want)
		if fmtErr(gotErr) != fmtErr(wantErr) {
			t.Fatalf("DecodeState(%q, %d) = %v; two passes: %v", b, version, gotErr, wantErr)
		}
		if gotErr == nil {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) {
				t.Fatalf("DecodeState(%q, %d) decoded %s; two passes: %s", b, version, g, w)
			}
		}
		var gotU, wantU unversioned
		gotErr = DecodeState(b, int(version), fuzzMaxLen, &gotU)
		wantErr = decodeStateTwoPass(b, int(version), fuzzMaxLen, &wantU)
		if fmtErr(gotErr) != fmtErr(wantErr) || (gotErr == nil && gotU != wantU) {
			t.Fatalf("unversioned: DecodeState(%q, %d) = %+v, %v; two passes: %+v, %v", b, version, gotU, gotErr, wantU, wantErr)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestDecodeStateVersionAsString: a struct whose "v" is read from a JSON
// string (",string") is not read for the version, so a version sent as a
// string is refused as before, and one sent as a number too (the field
// wants a string).
func TestDecodeStateVersionAsString(t *testing.T) {
	type quoted struct {
		V int `json:"v,string"`
	}
	for _, in := range []string{`{"v":"1"}`, `{"v":1}`} {
		var got, want quoted
		gotErr := DecodeState([]byte(in), 1, 64, &got)
		wantErr := decodeStateTwoPass([]byte(in), 1, 64, &want)
		if fmtErr(gotErr) != fmtErr(wantErr) || gotErr == nil {
			t.Errorf("%s: %v; two passes: %v (want both refused alike)", in, gotErr, wantErr)
		}
	}
}
