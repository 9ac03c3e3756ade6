package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

func testSigner(t *testing.T, b byte) *signer {
	t.Helper()
	s, err := newSigner(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenRoundTrip(t *testing.T) {
	s := testSigner(t, 1)
	now := time.Unix(1_800_000_000, 0)
	c := claims{Page: PageVerify, User: "alice", Audience: "client", Provider: "totp", Return: "/back", Nonce: newNonce(), Exp: now.Add(time.Minute).Unix()}
	tok := s.token(c)
	got, err := s.parse(tok, now)
	if err != nil || got != c {
		t.Fatalf("parse = %+v, %v; want %+v", got, err, c)
	}
	if _, err := s.parse(tok, now.Add(time.Minute)); !errors.Is(err, errTokenExpired) {
		t.Errorf("at expiry: %v, want expired", err)
	}
	if _, err := testSigner(t, 2).parse(tok, now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("another key: %v, want invalid", err)
	}
	if _, err := s.parse("", now); !errors.Is(err, errTokenMissing) {
		t.Errorf("empty: %v", err)
	}
	// Any change to the payload breaks the signature: swap the user.
	payload, sig, _ := strings.Cut(tok, ".")
	raw, _ := b64.DecodeString(payload)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["u"] = "mallory"
	forged, _ := json.Marshal(m)
	if _, err := s.parse(b64.EncodeToString(forged)+"."+sig, now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("forged payload: %v, want invalid", err)
	}
	for _, bad := range []string{"x", "x.y", payload + ".", "." + sig, tok + "A", strings.Repeat("A", maxToken+1) + "." + sig} {
		if _, err := s.parse(bad, now); !errors.Is(err, errTokenInvalid) {
			t.Errorf("parse(%.20q) = %v, want invalid", bad, err)
		}
	}
}

// A derived token leads back to the very link it came from, and keeps the
// link's expiry, so waiting or failing never extends a link.
func TestDerivedTokens(t *testing.T) {
	s := testSigner(t, 1)
	now := time.Unix(1_800_000_000, 0)
	link := claims{Page: PageVerify, User: "alice", Audience: "staff", Provider: "duo", Nonce: "n", Exp: now.Add(10 * time.Minute).Unix()}
	w := link.derive(kindWait, now.Add(9*time.Minute), waitTTL)
	w.TxID = "tx"
	if w.Kind != kindWait || w.LinkExp != link.Exp || w.Exp != now.Add(14*time.Minute).Unix() {
		t.Errorf("wait claims %+v", w)
	}
	r := w.derive(kindResult, now, resultTTL)
	if r.TxID != "" || r.LinkExp != link.Exp || r.Kind != kindResult {
		t.Errorf("result claims %+v", r)
	}
	if s.token(r.link()) != s.token(link) || s.token(w.link()) != s.token(link) {
		t.Error("a derived token does not lead back to its link")
	}
}

func TestCSRF(t *testing.T) {
	s := testSigner(t, 1)
	a, b := s.token(claims{Page: PageEnroll, Nonce: "a", Exp: 1}), s.token(claims{Page: PageEnroll, Nonce: "b", Exp: 1})
	if !s.checkCSRF(a, s.csrfValue(a)) {
		t.Fatal("own CSRF value refused")
	}
	if s.checkCSRF(a, s.csrfValue(b)) || s.checkCSRF(a, "") || s.checkCSRF(a, a) {
		t.Error("a CSRF value of another token, or none, accepted")
	}
	if s.csrfValue(a) == testSigner(t, 2).csrfValue(a) {
		t.Error("CSRF values do not depend on the key")
	}
}

func TestCheckReturnURL(t *testing.T) {
	for _, ok := range []string{"", "/", "/account/security?tab=2fa", "https://panel.example.com/login/done", "http://127.0.0.1:8080/x#y"} {
		if err := checkReturnURL(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"javascript:alert(1)", "//evil.example", "/\\evil.example", "data:text/html,x", "relative/path",
		"https://user:pw@example.com/", "https:///nohost", "/a\nb", "ftp://example.com/", "/" + strings.Repeat("a", 1024)} {
		if err := checkReturnURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWithResult(t *testing.T) {
	for in, want := range map[string]string{
		"/done":               "/done?twofactor_result=T",
		"/done?a=1":           "/done?a=1&twofactor_result=T",
		"https://x.test/d#f":  "https://x.test/d?twofactor_result=T#f",
		"https://x.test/?q#f": "https://x.test/?q&twofactor_result=T#f",
	} {
		if got := withResult(in, "T"); got != want {
			t.Errorf("withResult(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupSecret(t *testing.T) {
	if got := groupSecret("JBSWY3DPEHPK3PXPAB"); got != "JBSW Y3DP EHPK 3PXP AB" {
		t.Errorf("groupSecret = %q", got)
	}
}

func TestTemplatesParse(t *testing.T) {
	static, err := embeddedStaticFiles()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := parseTemplates(static)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"message", "enroll_start", "enroll_setup", "enroll_done", "verify", "wait", "done", "admin", "choose", "locked"} {
		if pages[name] == nil {
			t.Errorf("no template %q", name)
		}
	}
}

// TestNoEnrollmentOracle: the page text for an unenrolled user and for a
// wrong code is the same, so the person at the keyboard learns nothing.
func TestNoEnrollmentOracle(t *testing.T) {
	if a, b := reasonText(string(framework.ReasonNotEnrolled), ""), reasonText(string(sdk.ReasonInvalidCode), ""); a != b {
		t.Errorf("not_enrolled shows %q, invalid_code %q", a, b)
	}
}

// TestTokenOneSpelling: a token has one spelling. The last character of
// a 32-byte signature in unpadded base64 carries two unused bits; a
// lenient decoder ignores them, so three altered tokens were accepted as
// the original (found by host/apifuzz's FuzzUIToken).
func TestTokenOneSpelling(t *testing.T) {
	s := testSigner(t, 1)
	now := time.Unix(1_800_000_000, 0)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for range 16 { // tokens whose signatures end in different characters
		tok := s.token(claims{Page: PageVerify, User: "alice", Nonce: newNonce(), Exp: now.Add(time.Minute).Unix()})
		if _, err := s.parse(tok, now); err != nil {
			t.Fatal(err)
		}
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		for i := last &^ 3; i < last&^3+4; i++ { // the same six data bits
			if i == last {
				continue
			}
			alt := tok[:len(tok)-1] + alphabet[i:i+1]
			if _, err := s.parse(alt, now); !errors.Is(err, errTokenInvalid) {
				t.Errorf("parse(%q) = %v, want invalid (the token is %q)", alt, err, tok)
			}
		}
	}
}

// TestCodesLeftText: the result page's sentence for the backup codes left
// after a sign-in with one; none for a result without a count.
func TestCodesLeftText(t *testing.T) {
	for left, want := range map[string]string{
		"":   "",
		"0":  " That was your last backup code: get new ones from your security settings now.",
		"1":  " You have 1 backup code left: get new ones from your security settings soon.",
		"2":  " You have 2 backup codes left.",
		"10": " You have 10 backup codes left.",
	} {
		if got := codesLeftText(left); got != want {
			t.Errorf("codesLeftText(%q) = %q, want %q", left, got, want)
		}
	}
}
