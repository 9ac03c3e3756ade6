package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// yubiKeyOTP is a 44-character YubiKey OTP (modhex): a Duo passcode from a
// Duo-registered YubiKey.
const yubiKeyOTP = "ccccccbcgujhingjrdejhgfnuetrgigvejhhgbkugded"

// field is what the browser makes of the setup page's code field once
// typed into: what it kept of the keys and whether the form may submit.
type field struct {
	Value     string `json:"value"`
	Valid     bool   `json:"valid"`
	InputMode string `json:"inputMode"`
}

func (b *browser) codeField(keys string) field {
	b.t.Helper()
	b.do("type into #code", chromedp.Evaluate[chromedp.Void](`document.getElementById("code").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#code"), keys))
	return run(b, "read #code", chromedp.Evaluate[field](`(() => { const e = document.getElementById("code");
		return {value: e.value, valid: e.checkValidity(), inputMode: e.inputMode}; })()`))
}

// TestBrowserSetupCodeField: the setup page's confirmation field is the
// provider's. A Duo setup for a user Duo already knows is confirmed with a
// Duo passcode, which may be a 44-character YubiKey OTP: the browser keeps
// all of it and submits it, and Duo turns on. The authenticator app's field
// stays a field of digits.
func TestBrowserSetupCodeField(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	h := startHost(t, time.Now(), totpClients, duoStaff(t, emu))

	emu.AddUser("erin")
	emu.AddPasscode("erin", yubiKeyOTP)
	b.do("begin Duo for a user Duo knows", chromedp.Navigate(h.link("erin", map[string]string{
		"page": "enroll", "audience": "staff", "provider": "duo"})),
		chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#code")))
	b.shot("duo-passcode")
	if f := b.codeField(yubiKeyOTP); f.Value != yubiKeyOTP || !f.Valid || f.InputMode == "numeric" {
		t.Fatalf("Duo passcode field after typing a YubiKey OTP: %+v, want all %d characters kept, valid, not a numeric keyboard",
			f, len(yubiKeyOTP))
	}
	b.do("confirm with the YubiKey", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	if got := strings.Join(h.enrollments("erin"), ","); got != "duo/active" {
		t.Errorf("enrollments after the YubiKey passcode: %s", got)
	}

	b.do("begin TOTP", chromedp.Navigate(h.link("alice", map[string]string{
		"page": "enroll", "audience": "client", "provider": "totp"})),
		chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#code")))
	for _, c := range []struct {
		keys  string
		want  string
		valid bool
	}{
		{"123456", "123456", true},
		{"123 456", "123 456", true},
		{"abcdef", "abcdef", false},
		{"12345", "12345", false}, // a six-digit app's code is six digits
	} {
		f := b.codeField(c.keys)
		if f.Value != c.want || f.Valid != c.valid || f.InputMode != "numeric" {
			t.Errorf("TOTP field after typing %q: %+v, want value %q, valid %v, numeric keyboard", c.keys, f, c.want, c.valid)
		}
	}
}

// TestBrowserSignInCodeField: the sign-in page's code field is the
// provider's too (sdk.Info.CodeInput). A Duo user signs in with a
// 44-character YubiKey OTP typed into the passcode field: the browser
// keeps all of it, offers no numeric keyboard, submits it, and the user is
// verified. The authenticator app's field takes the digits of a TOTP code
// (6 or 8, the lengths its settings allow) and nothing else.
func TestBrowserSignInCodeField(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	h := startHost(t, time.Now(), totpClients, duoStaff(t, emu))

	emu.AddUser("erin")
	emu.AddPasscode("erin", yubiKeyOTP)
	b.do("set up Duo with a YubiKey", chromedp.Navigate(h.link("erin", map[string]string{
		"page": "enroll", "audience": "staff", "provider": "duo"})),
		chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#code")))
	b.codeField(yubiKeyOTP)
	b.do("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))

	const next = "ccccccbcgujhdkkkdlvjcehhdbcjtrhhbhdvjvnkffgb" // the key's next OTP
	emu.AddPasscode("erin", next)
	b.do("open Duo's sign-in page", chromedp.Navigate(h.link("erin", map[string]string{
		"page": "verify", "audience": "staff", "provider": "duo", "return_url": "/app/after-login"})), chromedp.WaitVisible(chromedp.CSS("#code")))
	b.shot("verify-duo-passcode")
	if f := b.codeField(next); f.Value != next || !f.Valid || f.InputMode == "numeric" {
		t.Fatalf("Duo passcode field after typing a YubiKey OTP: %+v, want all %d characters kept, valid, not a numeric keyboard",
			f, len(next))
	}
	b.do("sign in with the YubiKey", chromedp.Click(chromedp.CSS("#submit-code")), chromedp.WaitVisible(chromedp.CSS("#continue")))

	h.enrollTOTP("alice", "client")
	b.do("open TOTP's sign-in page", chromedp.Navigate(h.link("alice", map[string]string{
		"page": "verify", "audience": "client", "provider": "totp"})), chromedp.WaitVisible(chromedp.CSS("#code")))
	for _, c := range []struct {
		keys  string
		valid bool
	}{
		{"123456", true},
		{"123 456", true},
		// alice enrolled with 6 digits: her field takes 6, not the
		// provider's range (sdk.Display.SignInCodeInput).
		{"1234 5678", false},
		{"abcdef", false},
		{"12345", false},
		{"1234567", false},
	} {
		f := b.codeField(c.keys)
		if f.Value != c.keys || f.Valid != c.valid || f.InputMode != "numeric" {
			t.Errorf("TOTP sign-in field after typing %q: %+v, want it kept, valid %v, numeric keyboard", c.keys, f, c.valid)
		}
	}
}
