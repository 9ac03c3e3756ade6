package ui_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var displayRE = regexp.MustCompile(`name="display" value="([^"]+)"`)

// beginTOTP opens an enroll link and begins: the setup page.
func (h *testHost) beginTOTP(user string) page {
	h.t.Helper()
	p := h.get(h.link(user, map[string]string{"page": "enroll", "audience": "client", "provider": "totp"}), false)
	s := h.post("/ui/enroll/begin", p.form(h.t), nil)
	if s.status != 200 || !strings.Contains(s.body, `id="qr"`) || !displayRE.MatchString(s.body) {
		h.t.Fatalf("setup page: %d %s", s.status, s.body)
	}
	return s
}

// TestEnrollWrongCodeKeepsQR: a wrong confirmation code shows the same QR
// code, setup key and open-in-app link again (no restart); the display
// the form carries back opens only for its own enrollment: altered, or
// another user's, it is ignored and the page offers a new QR code.
func TestEnrollWrongCodeKeepsQR(t *testing.T) {
	h := startHost(t, start, totpClients)
	s := h.beginTOTP("alice")
	secret := strings.ReplaceAll(secretRE.FindStringSubmatch(s.body)[1], " ", "")
	if !strings.Contains(s.body, `href="otpauth://totp/`) || !strings.Contains(s.body, `id="open-app"`) || !strings.Contains(s.body, "secret="+secret) {
		t.Errorf("no otpauth:// link with the key on the setup page: %s", s.body)
	}
	f := s.form(t)
	f.Set("display", displayRE.FindStringSubmatch(s.body)[1])

	r := h.post("/ui/enroll/confirm", with(f, "code", "000000"), nil)
	if r.status != 200 || !strings.Contains(r.body, `id="error"`) || !strings.Contains(r.body, `id="qr"`) ||
		secretRE.FindStringSubmatch(r.body) == nil || strings.ReplaceAll(secretRE.FindStringSubmatch(r.body)[1], " ", "") != secret ||
		!strings.Contains(r.body, `id="open-app"`) {
		t.Fatalf("after a wrong code: %d %s", r.status, r.body)
	}
	strict(t, "setup page after a wrong code", r)

	other := displayRE.FindStringSubmatch(h.beginTOTP("bob").body)[1]
	d := f.Get("display")
	for name, bad := range map[string]string{
		"altered":        d[:len(d)-2] + map[bool]string{true: "AA", false: "BA"}[!strings.HasSuffix(d, "AA")],
		"another user's": other,
		"not base64":     "!!!",
	} { // with the first wrong code, 4: the lockout starts after 5
		r := h.post("/ui/enroll/confirm", with(with(f, "code", "000000"), "display", bad), nil)
		if r.status != 200 || strings.Contains(r.body, `id="qr"`) || secretRE.MatchString(r.body) || !strings.Contains(r.body, `id="restart"`) {
			t.Errorf("%s display: %d %s", name, r.status, r.body)
		}
	}

	r = h.post("/ui/enroll/confirm", with(f, "code", totpCode(t, secret, h.clock.Now())), nil)
	if r.status != http.StatusOK || len(codeRE.FindAllString(r.body, -1)) != 10 {
		t.Errorf("the right code after wrong ones: %d %s", r.status, r.body)
	}
}
