package totp

import (
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/twofactor/twofactor/sdk"
)

// RFC 6238 Appendix B seeds: ASCII "1234567890" repeated to 20, 32 and 64
// bytes for SHA1, SHA256 and SHA512.
const (
	rfcSeedSHA1   = "12345678901234567890"
	rfcSeedSHA256 = "12345678901234567890123456789012"
	rfcSeedSHA512 = "1234567890123456789012345678901234567890123456789012345678901234"
)

// stateFor builds a state the way the provider would store it.
func stateFor(t testing.TB, secret []byte, alg string, digits int, period, lastStep int64) []byte {
	t.Helper()
	e := &enrollment{secret: secret, algName: alg, algorithm: algorithms[alg], digits: digits, period: period, lastStep: lastStep}
	b := e.marshal()
	if _, err := parseState(b); err != nil {
		t.Fatalf("stateFor built an unusable state: %v", err)
	}
	return b
}

// codeAt is an independent code computation through pquerna/otp's HOTP.
func codeAt(t testing.TB, secret []byte, alg string, digits int, step int64) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(secret), uint64(step),
		hotp.ValidateOpts{Digits: otp.Digits(digits), Algorithm: algorithms[alg]})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(t *testing.T, p *Provider, st []byte, code string, now int64) sdk.VerifyResponse {
	t.Helper()
	r, err := p.Verify(ctx, sdk.VerifyRequest{State: st, Code: code, Now: time.Unix(now, 0)})
	if err != nil {
		t.Fatalf("Verify(%q at %d): %v", code, now, err)
	}
	return r
}

func wantOutcome(t *testing.T, r sdk.VerifyResponse, o sdk.Outcome, reason sdk.Reason) {
	t.Helper()
	if r.Outcome != o || r.Reason != reason {
		t.Fatalf("Verify = %s/%s (%s), want %s/%s", r.Outcome, r.Reason, r.Message, o, reason)
	}
	if (o == sdk.Allow) != (r.State != nil) {
		t.Fatalf("Verify %s returned state %q", r.Outcome, r.State)
	}
}

func lastStep(t *testing.T, st []byte) int64 {
	t.Helper()
	e, err := parseState(st)
	if err != nil {
		t.Fatal(err)
	}
	return e.lastStep
}

func TestRFC6238Vectors(t *testing.T) {
	seeds := map[string]string{"SHA1": rfcSeedSHA1, "SHA256": rfcSeedSHA256, "SHA512": rfcSeedSHA512}
	for _, tc := range []struct {
		unix int64
		alg  string
		code string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.alg, tc.unix), func(t *testing.T) {
			st := stateFor(t, []byte(seeds[tc.alg]), tc.alg, 8, 30, 0)
			// Skew 0, so the vector must match the current step exactly.
			p := configured(t, sdk.Settings{"skew": "0"})
			r := verify(t, p, st, tc.code, tc.unix)
			wantOutcome(t, r, sdk.Allow, "")
			if got, want := lastStep(t, r.State), tc.unix/30; got != want {
				t.Errorf("last_step = %d, want %d", got, want)
			}
			if r.Details["step_offset"] != "0" {
				t.Errorf("Details = %v", r.Details)
			}
			wrong := tc.code[:7] + string('0'+(tc.code[7]-'0'+1)%10)
			wantOutcome(t, verify(t, p, st, wrong, tc.unix), sdk.Deny, sdk.ReasonInvalidCode)
		})
	}
}

func TestReplay(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	p := configured(t, nil) // skew 1
	const now = 1700000000
	T := int64(now / 30)
	st := stateFor(t, secret, "SHA1", 6, 30, 0)

	// Same code twice: the second is replayed.
	cur := codeAt(t, secret, "SHA1", 6, T)
	r := verify(t, p, st, cur, now)
	wantOutcome(t, r, sdk.Allow, "")
	wantOutcome(t, verify(t, p, r.State, cur, now), sdk.Deny, sdk.ReasonReplayed)
	wantOutcome(t, verify(t, p, r.State, cur, now+25), sdk.Deny, sdk.ReasonReplayed)

	// An older step after a newer one is replayed, even though it is inside
	// the window and was never used itself.
	prev := codeAt(t, secret, "SHA1", 6, T-1)
	wantOutcome(t, verify(t, p, r.State, prev, now), sdk.Deny, sdk.ReasonReplayed)
	// ... while on its own it would have been accepted.
	r2 := verify(t, p, st, prev, now)
	wantOutcome(t, r2, sdk.Allow, "")
	if lastStep(t, r2.State) != T-1 || r2.Details["step_offset"] != "-1" {
		t.Errorf("state %s details %v", r2.State, r2.Details)
	}
	// A newer step after an older one is fine.
	next := codeAt(t, secret, "SHA1", 6, T+1)
	wantOutcome(t, verify(t, p, r2.State, next, now), sdk.Allow, "")
}

// When the same code belongs to two steps of the window, the higher step is
// recorded, so the code cannot be accepted a second time for the other.
func TestSeveralStepsMatch(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	p := configured(t, nil)
	for _, tc := range []struct{ lo, hi int64 }{
		{57766335, 57766336}, // found by search: adjacent steps, same 6-digit code
		{57017782, 57017784}, // two steps apart
	} {
		code := codeAt(t, secret, "SHA1", 6, tc.lo)
		if codeAt(t, secret, "SHA1", 6, tc.hi) != code {
			t.Fatalf("steps %d and %d no longer collide", tc.lo, tc.hi)
		}
		now := (tc.lo + 1) * 30 // T = lo+1: both steps are in the window
		st := stateFor(t, secret, "SHA1", 6, 30, 0)
		r := verify(t, p, st, code, now)
		wantOutcome(t, r, sdk.Allow, "")
		if got := lastStep(t, r.State); got != tc.hi {
			t.Errorf("last_step = %d, want the higher step %d", got, tc.hi)
		}
		wantOutcome(t, verify(t, p, r.State, code, now), sdk.Deny, sdk.ReasonReplayed)
		// With the lower step already used, the higher one is still fresh.
		r = verify(t, p, stateFor(t, secret, "SHA1", 6, 30, tc.lo), code, now)
		wantOutcome(t, r, sdk.Allow, "")
	}
}

func TestSkewWindow(t *testing.T) {
	secret := []byte(rfcSeedSHA256)
	const now = 1700000015 // mid-step
	T := int64(now / 30)
	for skew := int64(0); skew <= maxSkew; skew++ {
		p := configured(t, sdk.Settings{"skew": fmt.Sprint(skew)})
		for off := -skew - 2; off <= skew+2; off++ {
			st := stateFor(t, secret, "SHA256", 6, 30, 0)
			r := verify(t, p, st, codeAt(t, secret, "SHA256", 6, T+off), now)
			if off >= -skew && off <= skew {
				wantOutcome(t, r, sdk.Allow, "")
				if got := lastStep(t, r.State); got != T+off {
					t.Errorf("skew %d offset %d: last_step %d", skew, off, got)
				}
			} else if off < 0 {
				// Just behind the window: denied, with the clock hint.
				wantOutcome(t, r, sdk.Deny, sdk.ReasonClockSkewSuspected)
				if got := r.Details["step_offset"]; got != fmt.Sprint(off) {
					t.Errorf("skew %d offset %d: step_offset %q", skew, off, got)
				}
			} else {
				// Ahead of it: a plain invalid_code, the offset for the
				// audit log only (see TestClockSkewHint).
				wantOutcome(t, r, sdk.Deny, sdk.ReasonInvalidCode)
				if got := r.Details["suspected_step_offset"]; got != fmt.Sprint(off) {
					t.Errorf("skew %d offset %d: suspected_step_offset %q", skew, off, got)
				}
			}
		}
	}
}

// TestClockSkewHint: a code from a device whose clock is a few periods off
// is denied with clock_skew_suspected and the offset in steps; never
// allowed, whatever the skew setting.
func TestClockSkewHint(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	const now = 1700000015 // mid-step
	T := int64(now / 30)
	p := configured(t, nil) // skew 1
	st := stateFor(t, secret, "SHA1", 6, 30, 0)

	for _, tc := range []struct {
		off    int64
		reason sdk.Reason
		msg    string
	}{
		{-4, sdk.ReasonClockSkewSuspected, "code matches 4 steps in the past: check the device's clock"},
		// A future step's code would become valid: the sender is not told.
		{3, sdk.ReasonInvalidCode, "code does not match"},
		{-2, sdk.ReasonClockSkewSuspected, "code matches 2 steps in the past: check the device's clock"},
		{-10, sdk.ReasonClockSkewSuspected, "code matches 10 steps in the past: check the device's clock"},
		{10, sdk.ReasonInvalidCode, "code does not match"},
		{-11, sdk.ReasonInvalidCode, "code does not match"},
		{11, sdk.ReasonInvalidCode, "code does not match"},
		{-40, sdk.ReasonInvalidCode, "code does not match"},
	} {
		t.Run(fmt.Sprint(tc.off), func(t *testing.T) {
			code := codeAt(t, secret, "SHA1", 6, T+tc.off)
			// No step within ±10 (and the skew window) shares this code,
			// or the expectations below would not hold.
			for o := int64(-hintSteps); o <= hintSteps; o++ {
				if o != tc.off && codeAt(t, secret, "SHA1", 6, T+o) == code {
					t.Fatalf("steps %d and %d share a code; pick another time", tc.off, o)
				}
			}
			r := verify(t, p, st, code, now)
			wantOutcome(t, r, sdk.Deny, tc.reason)
			if r.Message != tc.msg {
				t.Errorf("Message = %q, want %q", r.Message, tc.msg)
			}
			switch {
			case tc.reason == sdk.ReasonClockSkewSuspected:
				if got := r.Details["step_offset"]; got != fmt.Sprint(tc.off) {
					t.Errorf("Details = %v, want step_offset %d", r.Details, tc.off)
				}
			case tc.off > 0 && tc.off <= hintSteps:
				if got := r.Details["suspected_step_offset"]; got != fmt.Sprint(tc.off) {
					t.Errorf("Details = %v, want suspected_step_offset %d", r.Details, tc.off)
				}
			case r.Details != nil:
				t.Errorf("Details = %v on %s", r.Details, tc.reason)
			}
		})
	}

	// Within the skew: allowed, as always.
	for _, off := range []int64{-1, 0, 1} {
		wantOutcome(t, verify(t, p, st, codeAt(t, secret, "SHA1", 6, T+off), now), sdk.Allow, "")
	}
	// With skew 2, -2 is inside and allowed; -3 is a hint.
	p2 := configured(t, sdk.Settings{"skew": "2"})
	wantOutcome(t, verify(t, p2, st, codeAt(t, secret, "SHA1", 6, T-2), now), sdk.Allow, "")
	wantOutcome(t, verify(t, p2, st, codeAt(t, secret, "SHA1", 6, T-3), now), sdk.Deny, sdk.ReasonClockSkewSuspected)
	// With skew 0, the neighbour behind is a hint too.
	p0 := configured(t, sdk.Settings{"skew": "0"})
	r := verify(t, p0, st, codeAt(t, secret, "SHA1", 6, T-1), now)
	wantOutcome(t, r, sdk.Deny, sdk.ReasonClockSkewSuspected)
	if r.Message != "code matches 1 step in the past: check the device's clock" || r.Details["step_offset"] != "-1" {
		t.Errorf("skew 0, -1: %q %v", r.Message, r.Details)
	}
}

// A used code stays replayed: inside the skew window (the hint is not
// looked for once the window matched), and outside it when the step is at
// or before the last accepted one.
func TestClockSkewHintReplay(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	const now = 1700000015
	T := int64(now / 30)
	p := configured(t, nil) // skew 1

	code := codeAt(t, secret, "SHA1", 6, T-1)
	r := verify(t, p, stateFor(t, secret, "SHA1", 6, 30, 0), code, now)
	wantOutcome(t, r, sdk.Allow, "")
	wantOutcome(t, verify(t, p, r.State, code, now), sdk.Deny, sdk.ReasonReplayed)

	// Four periods later the same code is 5 steps old: it was used, so it
	// is replayed, not a clock to fix.
	wantOutcome(t, verify(t, p, r.State, code, now+4*30), sdk.Deny, sdk.ReasonReplayed)
	// A code 4 steps old that was never used, while a later step was: also
	// at or before the last accepted step, so replayed.
	used := stateFor(t, secret, "SHA1", 6, 30, T-1)
	wantOutcome(t, verify(t, p, used, codeAt(t, secret, "SHA1", 6, T-4), now), sdk.Deny, sdk.ReasonReplayed)
	// A fresh step 4 ahead: invalid_code to the caller, the offset in
	// the details for the audit log.
	r = verify(t, p, used, codeAt(t, secret, "SHA1", 6, T+4), now)
	wantOutcome(t, r, sdk.Deny, sdk.ReasonInvalidCode)
	if r.Details["suspected_step_offset"] != "4" {
		t.Errorf("+4 after a use: %v", r.Details)
	}
}

// The hint is not given at enrollment: a finish step answers only done or
// a reason the host knows for it.
func TestClockSkewHintNotAtEnroll(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	const now = 1700000015
	p := configured(t, nil)
	st := stateFor(t, secret, "SHA1", 6, 30, 0)
	r, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: st, Code: codeAt(t, secret, "SHA1", 6, now/30-4), Now: time.Unix(now, 0)})
	if err != nil || r.Done || r.Reason != sdk.ReasonInvalidCode {
		t.Errorf("enroll finish with a code 4 steps old = %+v, %v", r, err)
	}
}

func TestNearEpoch(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	p := configured(t, nil) // skew 1
	st := stateFor(t, secret, "SHA1", 6, 30, 0)
	// At 10 s, T = 0 and T-1 must not wrap to 2^64-1 (pquerna/otp #97).
	wrapped, err := hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(secret), ^uint64(0),
		hotp.ValidateOpts{Digits: otp.DigitsSix})
	if err != nil {
		t.Fatal(err)
	}
	if wrapped != codeAt(t, secret, "SHA1", 6, 0) && wrapped != codeAt(t, secret, "SHA1", 6, 1) {
		wantOutcome(t, verify(t, p, st, wrapped, 10), sdk.Deny, sdk.ReasonInvalidCode)
	}
	wantOutcome(t, verify(t, p, st, codeAt(t, secret, "SHA1", 6, 1), 10), sdk.Allow, "")
	// Step 0 doubles as "no step yet", so it is never accepted.
	wantOutcome(t, verify(t, p, st, codeAt(t, secret, "SHA1", 6, 0), 10), sdk.Deny, sdk.ReasonReplayed)
	// Before 1970 there are no steps at all; nothing panics or is accepted.
	for _, now := range []int64{-1, -31, -1 << 62} {
		r := verify(t, p, st, codeAt(t, secret, "SHA1", 6, 0), now)
		if r.Outcome == sdk.Allow {
			t.Errorf("allowed at %d", now)
		}
	}
}

func TestVerifyWithoutNowUsesClock(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	p := configured(t, nil) // skew 1 absorbs a step boundary between the two clock reads
	code := codeAt(t, secret, "SHA1", 6, time.Now().Unix()/30)
	r, err := p.Verify(ctx, sdk.VerifyRequest{State: stateFor(t, secret, "SHA1", 6, 30, 0), Code: code})
	if err != nil || r.Outcome != sdk.Allow {
		t.Errorf("Verify without Now = %+v, %v", r, err)
	}
}

func TestNormalizeCode(t *testing.T) {
	for _, tc := range []struct {
		in     string
		digits int
		want   string // "" means not ok
	}{
		{"123456", 6, "123456"},
		{"123 456", 6, "123456"},
		{"  123456  ", 6, "123456"},
		{"1 2 3 4 5 6", 6, "123456"},
		{"000000", 6, "000000"},
		{"1234 5678", 8, "12345678"},
		{"12345678", 8, "12345678"},
		{"123456", 8, ""},
		{"12345678", 6, ""},
		{"12345", 6, ""},
		{"1234567", 6, ""},
		{"", 6, ""},
		{"      ", 6, ""},
		{"\t123456", 6, ""},
		{"123456\n", 6, ""},
		{"123456\r", 6, ""},
		{"\u00a0123456", 6, ""}, // NBSP
		{"123456\u3000", 6, ""}, // ideographic space
		{"123\u2009456", 6, ""}, // thin space
		{"١٢٣٤٥٦", 6, ""},       // Arabic-Indic digits
		{"１２３４５６", 6, ""},       // full-width digits
		{"12345a", 6, ""},
		{"+12345", 6, ""},
		{"-12345", 6, ""},
		{"123-456", 6, ""},
		{"12345\x00", 6, ""},
		{"123456", 7, ""},
		{"123456", -1, ""},
		{"123456", 0, ""},
		{strings.Repeat(" ", maxCodeLen) + "123456", 6, ""},
	} {
		got, ok := normalizeCode(tc.in, tc.digits)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("normalizeCode(%q, %d) = %q, %v; want %q", tc.in, tc.digits, got, ok, tc.want)
		}
	}
}

// Odd inputs around a correct code are a Deny, never an error.
func TestVerifyInputForms(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	p := configured(t, nil)
	const now = 1700000000
	code := codeAt(t, secret, "SHA1", 6, now/30)
	full := strings.Map(func(r rune) rune { return r - '0' + '０' }, code)
	for _, tc := range []struct {
		in    string
		allow bool
	}{
		{code, true},
		{" " + code[:3] + " " + code[3:] + " ", true},
		{"\t" + code, false},
		{code + "\n", false},
		{"\u00a0" + code, false},
		{code + "\u3000", false},
		{full, false},
		{code + "0", false},
		{code[:5], false},
		{"", false},
	} {
		r := verify(t, p, stateFor(t, secret, "SHA1", 6, 30, 0), tc.in, now)
		if tc.allow {
			wantOutcome(t, r, sdk.Allow, "")
		} else {
			wantOutcome(t, r, sdk.Deny, sdk.ReasonInvalidCode)
		}
	}
}

// Responses and errors never quote the code or the secret.
func TestMessagesDoNotLeak(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	b32secret := b32.EncodeToString(secret)
	p := configured(t, nil)
	const now = 1700000000
	code := codeAt(t, secret, "SHA1", 6, now/30)
	st := stateFor(t, secret, "SHA1", 6, 30, 0)
	r1 := verify(t, p, st, code, now)
	r2 := verify(t, p, r1.State, code, now)
	r3 := verify(t, p, st, "999999", now)
	for _, r := range []sdk.VerifyResponse{r1, r2, r3} {
		text := r.Message + fmt.Sprint(r.Details)
		if strings.Contains(text, code) || strings.Contains(text, "999999") || strings.Contains(text, b32secret) {
			t.Errorf("response leaks: %q", text)
		}
	}
	bad := strings.Replace(string(st), `"v":1`, `"v":1,"x":"`+b32secret+`"`, 1)
	for _, s := range []string{bad, strings.Replace(string(st), `"SHA1"`, `"`+b32secret+`"`, 1), string(st[:40])} {
		_, err := p.Verify(ctx, sdk.VerifyRequest{State: []byte(s), Code: code, Now: time.Unix(now, 0)})
		if err == nil || strings.Contains(err.Error(), b32secret[:8]) || strings.Contains(err.Error(), code) {
			t.Errorf("error %v", err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	secret := []byte(rfcSeedSHA1)
	p := configured(b, nil)
	now := time.Unix(1700000000, 0)
	// last_step 0 is never written back, so the same code is fresh each time.
	st := stateFor(b, secret, "SHA1", 6, 30, 0)
	req := sdk.VerifyRequest{State: st, Code: codeAt(b, secret, "SHA1", 6, now.Unix()/30), Now: now}
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.Verify(ctx, req)
		if err != nil || r.Outcome != sdk.Allow {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
	}
}

// BenchmarkVerifyWrong is Verify of a wrong code: the first of a run
// (Failures 0), where the skew window and the hint window around it are
// computed, all of them, whatever the code; and a later one, where only
// the skew window is.
func BenchmarkVerifyWrong(b *testing.B) {
	secret := []byte(rfcSeedSHA1)
	p := configured(b, nil)
	now := time.Unix(1700000000, 0)
	st := stateFor(b, secret, "SHA1", 6, 30, 0)
	code := codeAt(b, secret, "SHA1", 6, now.Unix()/30)
	wrong := fmt.Sprintf("%06d", (atoi(b, code)+1)%1000000)
	for _, failures := range []int{0, 1} {
		b.Run(fmt.Sprintf("failures=%d", failures), func(b *testing.B) {
			req := sdk.VerifyRequest{State: st, Code: wrong, Now: now, Failures: failures}
			b.ReportAllocs()
			for b.Loop() {
				r, err := p.Verify(ctx, req)
				if err != nil || r.Outcome != sdk.Deny {
					b.Fatalf("Verify = %+v, %v", r, err)
				}
			}
		})
	}
}

func atoi(b *testing.B, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// TestClockSkewHintFirstFailureOnly: the wider scan for a device with a
// wrong clock runs on the first failure of a run only (Failures 0): after
// one, a code a few steps old is a plain invalid_code, with no offset in
// the details; the outcome (deny) and a code inside the skew window
// (allow) do not depend on Failures.
func TestClockSkewHintFirstFailureOnly(t *testing.T) {
	secret := []byte(rfcSeedSHA1)
	const now = 1700000015
	T := int64(now / 30)
	p := configured(t, nil)
	st := stateFor(t, secret, "SHA1", 6, 30, 0)
	at := func(off int64, failures int) sdk.VerifyResponse {
		t.Helper()
		r, err := p.Verify(ctx, sdk.VerifyRequest{State: st, Code: codeAt(t, secret, "SHA1", 6, T+off), Now: time.Unix(now, 0), Failures: failures})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		off      int64
		failures int
		outcome  sdk.Outcome
		reason   sdk.Reason
	}{
		{-4, 0, sdk.Deny, sdk.ReasonClockSkewSuspected},
		{-4, 1, sdk.Deny, sdk.ReasonInvalidCode},
		{-4, 4, sdk.Deny, sdk.ReasonInvalidCode},
		{3, 1, sdk.Deny, sdk.ReasonInvalidCode},
		{0, 3, sdk.Allow, ""},
		{-1, 7, sdk.Allow, ""},
	} {
		r := at(tc.off, tc.failures)
		if r.Outcome != tc.outcome || r.Reason != tc.reason {
			t.Errorf("offset %d after %d failures: %s/%s, want %s/%s", tc.off, tc.failures, r.Outcome, r.Reason, tc.outcome, tc.reason)
		}
		if tc.failures > 0 && tc.outcome == sdk.Deny && r.Details != nil {
			t.Errorf("offset %d after %d failures: details %v (the scan ran)", tc.off, tc.failures, r.Details)
		}
	}
}
