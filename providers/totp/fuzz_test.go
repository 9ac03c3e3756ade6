package totp

import (
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
