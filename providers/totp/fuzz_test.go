package totp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// FuzzNormalizeCode checks normalizeCode against a plain restatement of the
// rule: remove ASCII spaces, then require exactly digits ASCII digits.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", " 12345678 ", "１２３４５６", "\u00a0123456", "12345a", ""} {
		f.Add(s, 6)
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, code string, digits int) {
		got, ok := normalizeCode(code, digits)
		stripped := strings.ReplaceAll(code, " ", "")
		want := (digits == 6 || digits == 8) && len(code) <= maxCodeLen && len(stripped) == digits &&
			strings.Trim(stripped, "0123456789") == ""
		if ok != want {
			t.Fatalf("normalizeCode(%q, %d) ok = %v, want %v", code, digits, ok, want)
		}
		if ok && got != stripped {
			t.Fatalf("normalizeCode(%q, %d) = %q, want %q", code, digits, got, stripped)
		}
		if !ok && got != "" {
			t.Fatalf("normalizeCode(%q, %d) = %q with ok false", code, digits, got)
		}
	})
}

// FuzzVerify feeds arbitrary codes, states and times to Verify. It must not
// panic; an unusable state must be an InvalidState error and never an
// Allow; an Allow must be for a code of a fresh step inside the window; and
// a clock hint must name a fresh step outside it, whose code was sent.
func FuzzVerify(f *testing.F) {
	valid := `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`
	f.Add("287082", []byte(valid), int64(59))
	f.Add("94287082", []byte(`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":8,"period":30,"last_step":0}`), int64(59))
	f.Add("287 082", []byte(valid), int64(10))
	for _, g := range garbageStates {
		f.Add("287082", []byte(g.state), int64(59))
	}
	p := New()
	if err := p.Configure(ctx, sdk.Settings{"issuer": "Acme", "skew": "2"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, code string, state []byte, unix int64) {
		now := time.Unix(unix, 0)
		if now.IsZero() { // Verify would read the clock; keep runs reproducible
			now = now.Add(time.Second)
		}
		r, err := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: code, Now: now})
		e, perr := parseState(state)
		if perr != nil {
			if sdk.KindOf(err) != sdk.KindInvalidState || r.Outcome == sdk.Allow || r.State != nil {
				t.Fatalf("unusable state (%v) gave %+v, %v", perr, r, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("usable state gave error %v", err)
		}
		if r.Outcome != sdk.Allow {
			if r.Outcome != sdk.Deny || r.State != nil {
				t.Fatalf("non-allow response %+v", r)
			}
			if r.Reason == sdk.ReasonClockSkewSuspected {
				// The hint names a fresh step outside the window (skew 2)
				// and within ten steps, whose code this is.
				off, err := strconv.ParseInt(r.Details["step_offset"], 10, 64)
				T := floorDiv(unix, e.period)
				c, _ := normalizeCode(code, e.digits)
				if err != nil || off >= -2 && off <= 2 || off < -hintSteps || off > hintSteps || T+off <= e.lastStep ||
					c == "" || c != codeAt(t, e.secret, e.algName, e.digits, T+off) {
					t.Fatalf("clock hint %+v for %q at %d", r, code, unix)
				}
			}
			return
		}
		next, err := parseState(r.State)
		if err != nil {
			t.Fatalf("Allow returned an unusable state: %v", err)
		}
		T := floorDiv(unix, e.period)
		if next.lastStep <= e.lastStep || next.lastStep < T-2 || next.lastStep > T+2 {
			t.Fatalf("Allow recorded step %d (was %d, current %d)", next.lastStep, e.lastStep, T)
		}
		c, _ := normalizeCode(code, e.digits)
		if c == "" || c != codeAt(t, e.secret, e.algName, e.digits, next.lastStep) {
			t.Fatalf("Allow for %q, which is not the code of step %d", code, next.lastStep)
		}
	})
}

// FuzzParseState feeds arbitrary state blobs to the provider's decoding of
// its opaque state, directly and through both calls that take a state
// (Verify and the enrollment's finish step), with a code that is right
// for the RFC 6238 secret, so that only the state can be at fault. An
// unusable state is an InvalidState error from all three, never an allow
// or a confirmed enrollment, and its message never quotes the secret; a
// usable one is within bounds and survives a round trip.
func FuzzParseState(f *testing.F) {
	for _, g := range garbageStates {
		f.Add([]byte(g.state))
	}
	for _, s := range []string{
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA256","digits":8,"period":60,"last_step":1}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA512","digits":6,"period":30,"last_step":9223372036854775807}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0,"Secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1\u0000","digits":6,"period":30,"last_step":0}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":1e3}`,
		`{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":null}`,
	} {
		f.Add([]byte(s))
	}
	p := New()
	if err := p.Configure(ctx, sdk.Settings{"issuer": "Acme"}); err != nil {
		f.Fatal(err)
	}
	now := time.Unix(59, 0) // 287082 is the RFC seed's SHA-1 code then
	f.Fuzz(func(t *testing.T, state []byte) {
		e, perr := parseState(state)
		v, verr := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: "287082", Now: now})
		en, eerr := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: state, Code: "287082", Now: now})
		if perr != nil {
			for _, err := range []error{perr, verr, eerr} {
				var se *sdk.Error
				if !errors.As(err, &se) || se.Kind != sdk.KindInvalidState {
					t.Fatalf("unusable state %q gave %#v, want an invalid_state error", state, err)
				}
				if secret := jsonString(state, "secret"); len(secret) >= 8 && strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes the secret: %v", err)
				}
			}
			if v.Outcome == sdk.Allow || v.State != nil || en.Done || en.State != nil {
				t.Fatalf("unusable state %q gave %+v and %+v", state, v, en)
			}
			return
		}
		if verr != nil || eerr != nil {
			t.Fatalf("usable state %q gave errors %v, %v", state, verr, eerr)
		}
		if len(e.secret) < minSecretBytes || len(e.secret) > maxSecretBytes || (e.digits != 6 && e.digits != 8) ||
			e.period < minPeriod || e.period > maxPeriod || e.lastStep < 0 || algorithms[e.algName] != e.algorithm {
			t.Fatalf("parseState(%q) accepted %+v", state, e)
		}
		again, err := parseState(e.marshal())
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", state, again, err, e)
		}
	})
}

// jsonString is the string value of key in a JSON object, or "".
func jsonString(b []byte, key string) string {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s, _ := m[key].(string)
	return s
}
