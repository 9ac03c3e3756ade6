package ui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk"
)

// TestOTPAuthLinkOnlyOTPAuth: the setup page's "Open in your
// authenticator app" link is written as a template.URL, past
// html/template's URL filter, so it must be an otpauth: URL. A provider's
// display (a third party's plugin) whose OTPAuthURL has another scheme
// but parses with "totp" as its host (javascript://totp/...) must not
// become a link.
func TestOTPAuthLinkOnlyOTPAuth(t *testing.T) {
	static, err := embeddedStaticFiles()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := parseTemplates(static)
	if err != nil {
		t.Fatal(err)
	}
	u := &UI{sig: testSigner(t, 1), pages: pages, log: hclog.NewNullLogger()}
	c := claims{Page: PageEnroll, User: "alice", Audience: "client", Provider: "acme", Nonce: "n", Exp: 1 << 40}
	for _, bad := range []string{
		"javascript://totp/%0Aalert(document.domain)?secret=JBSWY3DPEHPK3PXP",
		"data://totp/x?secret=JBSWY3DPEHPK3PXP",
		"https://totp/phish?secret=JBSWY3DPEHPK3PXP",
	} {
		v := &view{Token: "tok", CSRF: "csrf", Title: "Scan the QR code"}
		u.showDisplay(v, c, sdk.Display{OTPAuthURL: bad})
		w := httptest.NewRecorder()
		u.render(w, 200, "enroll_setup", v)
		body := w.Body.String()
		if strings.Contains(body, `id="open-app"`) {
			i := strings.Index(body, `id="open-app"`)
			t.Errorf("OTPAuthURL %q rendered as a link: %s", bad, body[max(0, i-200):i+20])
		}
	}
	// The real thing still gets its link.
	v := &view{Token: "tok", CSRF: "csrf"}
	u.showDisplay(v, c, sdk.Display{OTPAuthURL: "otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME"})
	w := httptest.NewRecorder()
	u.render(w, 200, "enroll_setup", v)
	if !strings.Contains(w.Body.String(), `href="otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&amp;issuer=ACME" id="open-app"`) {
		t.Errorf("an otpauth URL: no link: %s", w.Body.String())
	}
}
