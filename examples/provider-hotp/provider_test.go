package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/sdk"
)

var ctx = context.Background()

// rfcSecret is the secret of RFC 4226 Appendix D.
var rfcSecret = []byte("12345678901234567890")

// rfcCodes are the HOTP values of Appendix D for counters 0 to 9.
var rfcCodes = []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}

func configured(t testing.TB, extra sdk.Settings) *Provider {
	t.Helper()
	s := sdk.Settings{"issuer": "ACME"}
	for k, v := range extra {
		s[k] = v
	}
	p := New()
	if err := p.Configure(ctx, s); err != nil {
		t.Fatalf("Configure(%v): %v", s, err)
	}
	return p
}

// rfcState is the Appendix D token, last used at counter (-1: never).
func rfcState(counter int64) []byte {
	return (&enrollment{secret: rfcSecret, digits: 6, counter: counter}).marshal()
}

func TestRFC4226AppendixD(t *testing.T) {
	e := &enrollment{secret: rfcSecret, digits: 6}
	for i, want := range rfcCodes {
		if got := e.codeAt(int64(i)); got != want {
			t.Errorf("counter %d: code %s, want %s", i, got, want)
		}
	}
	// The decimal column of Appendix D, truncated to eight digits.
	e.digits = 8
	for i, want := range []string{"84755224", "94287082", "37359152"} {
		if got := e.codeAt(int64(i)); got != want {
			t.Errorf("8 digits, counter %d: code %s, want %s", i, got, want)
		}
	}
	// Through Verify: a fresh token's codes are accepted in order, each
	// advancing the stored counter.
	p := configured(t, nil)
	state := rfcState(-1)
	for i, code := range rfcCodes {
		r, err := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: code})
		if err != nil || r.Outcome != sdk.Allow {
			t.Fatalf("counter %d: %+v, %v", i, r, err)
		}
		state = r.State
		if e, _ := parseState(state); e.counter != int64(i) {
			t.Fatalf("counter %d: state counter %d", i, e.counter)
		}
	}
}

// verify runs one Verify and returns its outcome, reason and the state to
// keep (the new one if the provider returned one).
func verify(t *testing.T, p *Provider, state []byte, code string) (sdk.Outcome, sdk.Reason, []byte) {
	t.Helper()
	r, err := p.Verify(ctx, sdk.VerifyRequest{State: state, Code: code})
	if err != nil {
		t.Fatalf("Verify(%q): %v", code, err)
	}
	if r.State != nil {
		state = r.State
	}
	return r.Outcome, r.Reason, state
}

func TestVerifyLookAheadAndReplay(t *testing.T) {
	p := configured(t, nil) // look_ahead 10
	state := rfcState(-1)
	// Three presses never reached a login: counter 3 is still in the window.
	out, reason, state := verify(t, p, state, rfcCodes[3])
	if out != sdk.Allow {
		t.Fatalf("code 3: %s %s", out, reason)
	}
	for _, c := range []int{3, 2, 0} {
		if out, reason, _ := verify(t, p, state, rfcCodes[c]); out != sdk.Deny || reason != sdk.ReasonReplayed {
			t.Errorf("replayed code %d: %s %s", c, out, reason)
		}
	}
	if out, _, _ := verify(t, p, state, rfcCodes[4]); out != sdk.Allow {
		t.Errorf("next code: %s", out)
	}
	// Spaces are allowed, as apps show "755 224".
	if out, _, _ := verify(t, p, state, "338 314"); out != sdk.Allow {
		t.Errorf("code with a space: %s", out)
	}
	for _, bad := range []string{"", "12345", "1234567", "٣٣٨٣١٤", "338314\x00", "abcdef"} {
		if out, reason, _ := verify(t, p, state, bad); out != sdk.Deny || reason != sdk.ReasonInvalidCode {
			t.Errorf("malformed %q: %s %s", bad, out, reason)
		}
	}
}

// pressed is the Appendix D token with its code for any counter.
type pressed struct{ e *enrollment }

func (k pressed) code(counter int64) string { return k.e.codeAt(counter) }

func TestResynchronisation(t *testing.T) {
	p := configured(t, nil) // look_ahead 10, resync_window 100
	tok := pressed{&enrollment{secret: rfcSecret, digits: 6}}
	state := rfcState(1)

	// Pressed 20 times unseen: counters 2 to 21 are gone; 22 is beyond the
	// look-ahead window. It asks for the next code instead of allowing.
	out, reason, state := verify(t, p, state, tok.code(22))
	if out != sdk.Deny || reason != ReasonResyncRequired {
		t.Fatalf("code 22: %s %s", out, reason)
	}
	if e, _ := parseState(state); !e.hasPending || e.pending != 22 || e.counter != 1 {
		t.Fatalf("state after resync request: %+v", e)
	}
	// The same code again does not resynchronise.
	if out, reason, _ := verify(t, p, state, tok.code(22)); out != sdk.Deny || reason != ReasonResyncRequired {
		t.Errorf("code 22 twice: %s %s", out, reason)
	}
	// A code two ahead is not "the next one": no resync, a new request.
	if out, reason, s := verify(t, p, state, tok.code(24)); out != sdk.Deny || reason != ReasonResyncRequired {
		t.Errorf("code 24 after 22: %s %s", out, reason)
	} else if e, _ := parseState(s); e.pending != 24 {
		t.Errorf("pending after 24: %d", e.pending)
	}
	// The next code resynchronises and is allowed.
	out, reason, state = verify(t, p, state, tok.code(23))
	if out != sdk.Allow {
		t.Fatalf("code 23: %s %s", out, reason)
	}
	if e, _ := parseState(state); e.hasPending || e.counter != 23 {
		t.Fatalf("state after resync: %+v", e)
	}
	if out, reason, _ := verify(t, p, state, tok.code(23)); reason != sdk.ReasonReplayed {
		t.Errorf("code 23 replayed: %s %s", out, reason)
	}
	if out, _, _ := verify(t, p, state, tok.code(24)); out != sdk.Allow {
		t.Errorf("code 24 after resync: %s", out)
	}
}

func TestResyncNeedsTheImmediateNextAttempt(t *testing.T) {
	p := configured(t, nil)
	tok := pressed{&enrollment{secret: rfcSecret, digits: 6}}
	_, _, state := verify(t, p, rfcState(1), tok.code(50))
	// A wrong code in between cancels the pending resynchronisation.
	out, reason, state := verify(t, p, state, "000000")
	if out != sdk.Deny || reason != sdk.ReasonInvalidCode {
		t.Fatalf("wrong code: %s %s", out, reason)
	}
	if e, _ := parseState(state); e.hasPending {
		t.Fatal("a wrong code left the resynchronisation pending")
	}
	if out, reason, _ := verify(t, p, state, tok.code(51)); out == sdk.Allow {
		t.Errorf("code 51 after an interruption: %s %s", out, reason)
	}
	// Beyond the resync window a code is simply wrong.
	if out, reason, _ := verify(t, p, rfcState(1), tok.code(102)); reason != sdk.ReasonInvalidCode {
		t.Errorf("code 102 from counter 1: %s %s", out, reason)
	}
	if out, reason, _ := verify(t, p, rfcState(1), tok.code(101)); reason != ReasonResyncRequired {
		t.Errorf("code 101 from counter 1: %s %s", out, reason)
	}
}

func TestLookAheadSetting(t *testing.T) {
	p := configured(t, sdk.Settings{"look_ahead": "3", "resync_window": "5"})
	tok := pressed{&enrollment{secret: rfcSecret, digits: 6}}
	if out, _, _ := verify(t, p, rfcState(-1), tok.code(2)); out != sdk.Allow {
		t.Errorf("counter 2 with look_ahead 3: %s", out)
	}
	if _, reason, _ := verify(t, p, rfcState(-1), tok.code(3)); reason != ReasonResyncRequired {
		t.Errorf("counter 3 with look_ahead 3: %s", reason)
	}
	if _, reason, _ := verify(t, p, rfcState(-1), tok.code(5)); reason != sdk.ReasonInvalidCode {
		t.Errorf("counter 5 with resync_window 5: %s", reason)
	}
}

func TestEnroll(t *testing.T) {
	p := configured(t, sdk.Settings{"issuer": "ACME Billing", "digits": "8"})
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "u1", AccountName: "alice"}, Step: sdk.EnrollBegin})
	if err != nil || begin.Done || len(begin.State) == 0 {
		t.Fatalf("begin: %+v, %v", begin, err)
	}
	if !bytes.HasPrefix(begin.Display.QRPNG, []byte("\x89PNG")) {
		t.Error("no QR PNG")
	}
	key, err := otp.NewKeyFromURL(begin.Display.OTPAuthURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(begin.Display.OTPAuthURL)
	if key.Type() != "hotp" || key.Issuer() != "ACME Billing" || key.AccountName() != "alice" || u.Query().Get("counter") != "0" ||
		u.Query().Get("digits") != "8" || !strings.Contains(u.RawQuery, "issuer=ACME%20Billing") {
		t.Errorf("otpauth URL = %s", begin.Display.OTPAuthURL)
	}
	e, err := parseState(begin.State)
	if err != nil || len(e.secret) != secretBytes || key.Secret() != b32.EncodeToString(e.secret) || e.counter != -1 {
		t.Fatalf("state %+v, %v", e, err)
	}
	if f, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: begin.State, Code: "00000000"}); err != nil || f.Done || f.Reason != sdk.ReasonInvalidCode {
		t.Errorf("wrong code: %+v, %v", f, err)
	}
	f, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: begin.State, Code: e.codeAt(0)})
	if err != nil || !f.Done {
		t.Fatalf("finish: %+v, %v", f, err)
	}
	// The confirmation code is spent.
	if out, reason, _ := verify(t, p, f.State, e.codeAt(0)); out != sdk.Deny || reason != sdk.ReasonReplayed {
		t.Errorf("confirmation code reused: %s %s", out, reason)
	}
	if out, _, _ := verify(t, p, f.State, e.codeAt(1)); out != sdk.Allow {
		t.Errorf("first login: %s", out)
	}
	if _, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "a:b"}, Step: sdk.EnrollBegin}); sdk.KindOf(err) != sdk.KindInvalidRequest {
		t.Errorf("account with ':': %v", err)
	}
}

func TestConfigureRejects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings sdk.Settings
		field    string
	}{
		{"missing issuer", sdk.Settings{}, "issuer"},
		{"issuer with colon", sdk.Settings{"issuer": "A:B"}, "issuer"},
		{"digits 7", sdk.Settings{"issuer": "A", "digits": "7"}, "digits"},
		{"look_ahead 0", sdk.Settings{"issuer": "A", "look_ahead": "0"}, "look_ahead"},
		{"look_ahead 101", sdk.Settings{"issuer": "A", "look_ahead": "101"}, "look_ahead"},
		{"resync_window not above look_ahead", sdk.Settings{"issuer": "A", "look_ahead": "50", "resync_window": "50"}, "resync_window"},
		{"unknown", sdk.Settings{"issuer": "A", "window": "5"}, "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *sdk.Error
			err := New().Configure(ctx, tc.settings)
			if !errors.As(err, &e) || e.Kind != sdk.KindInvalidSettings || e.Field != tc.field {
				t.Errorf("err = %v, want invalid_settings naming %s", err, tc.field)
			}
		})
	}
	if _, err := New().Verify(ctx, sdk.VerifyRequest{State: rfcState(0), Code: "287082"}); sdk.KindOf(err) != sdk.KindNotConfigured {
		t.Errorf("verify before configure: %v", err)
	}
}

func TestParseStateRejects(t *testing.T) {
	good := string(rfcState(4))
	for name, s := range map[string]string{
		"empty":           "",
		"not JSON":        "hotp",
		"version 2":       strings.Replace(good, `"v":1`, `"v":2`, 1),
		"unknown field":   strings.Replace(good, `{`, `{"x":1,`, 1),
		"short secret":    `{"v":1,"secret":"GEZDGNBV","digits":6,"counter":0}`,
		"lower-case b32":  strings.ToLower(good),
		"digits 7":        strings.Replace(good, `"digits":6`, `"digits":7`, 1),
		"counter -2":      strings.Replace(good, `"counter":4`, `"counter":-2`, 1),
		"counter huge":    strings.Replace(good, `"counter":4`, `"counter":9223372036854775807`, 1),
		"pending behind":  strings.Replace(good, `"counter":4`, `"counter":4,"pending":4`, 1),
		"trailing data":   good + "{}",
		"too long":        good + strings.Repeat(" ", maxStateLen),
		"counter is text": strings.Replace(good, `"counter":4`, `"counter":"4"`, 1),
	} {
		if _, err := parseState([]byte(s)); sdk.KindOf(err) != sdk.KindInvalidState {
			t.Errorf("%s: err = %v", name, err)
		} else if strings.Contains(err.Error(), "GEZDGNBV") {
			t.Errorf("%s: error quotes the secret: %v", name, err)
		}
	}
	if e, err := parseState(rfcState(4)); err != nil || e.counter != 4 {
		t.Errorf("good state: %+v, %v", e, err)
	}
}
