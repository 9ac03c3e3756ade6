package ui_test

import (
	"html"
	"net/url"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// TestProvidersWordsOnPages: the pages say what each provider says of
// itself (sdk.Info.Texts, an input's Label and Format), across the real
// plugin protocol: TOTP's authenticator app, Duo Mobile and email, on the
// page that offers them, their setup pages, a wrong or early confirmation
// and the sign-in page. The UI has none of these words (see
// TestUINamesNoProvider): each sentence here came from its plugin.
func TestProvidersWordsOnPages(t *testing.T) {
	emu := startEmulator(t)
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, start, totpBoth, duoBoth(t, emu), emailClients(srv), policy("  clients: {require: true}\n"))
	says := func(t *testing.T, what string, p page, want ...string) {
		t.Helper()
		body := html.UnescapeString(p.body)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s does not say %q: %d %.3000s", what, w, p.status, body)
			}
		}
	}

	choose := h.get(h.link("nora", map[string]string{"page": "verify", "audience": "client"}), true)
	says(t, "the page offering the methods", choose,
		"A code from an authenticator app on your phone.",
		"Approve a request in Duo Mobile, or type a passcode from it.",
		"A code we send to your email address.",
		">Authenticator app<", ">Duo Mobile<", ">Email<")

	for _, c := range []struct {
		provider string
		start    []string // the first setup page
		inputs   url.Values
		setup    []string // the page begin shows
		confirm  []string // that page after a wrong or early confirmation
	}{
		{provider: "totp",
			start: []string{"Protect your account with a code from an app on your phone, asked for at each sign-in.",
				"Install an authenticator app on your phone, if you don't have one: Google Authenticator, Microsoft Authenticator, 1Password, Bitwarden or any app that supports time-based codes."},
			setup: []string{"<h1>Scan the QR code</h1>", "Open your authenticator app, add an account and scan this code. Then enter the code the app shows.",
				`alt="QR code to scan with your authenticator app"`},
			confirm: []string{"That code didn't match. Enter the current code from your app; if it still fails, check that your phone's time is set automatically."}},
		{provider: "duo",
			start: []string{"Protect your account with Duo Mobile: at each sign-in you approve a request on your phone.",
				"Install Duo Mobile on your phone from the App Store or Google Play."},
			setup: []string{"<h1>Activate Duo Mobile</h1>", "Open Duo Mobile, tap + (Add) and scan this barcode. Then come back and continue.",
				`alt="Activation barcode to scan with Duo Mobile"`},
			confirm: []string{"Duo Mobile has not been activated yet. Finish the activation on your phone, then check again."}},
		{provider: "email",
			start: []string{"Protect your account with a code we email you at each sign-in. First, confirm where to send it.",
				"Email address", `type="email"`, `autocomplete="email"`},
			inputs:  url.Values{"input_email": {"nora@x.example"}},
			setup:   []string{"<h1>Enter the code we sent</h1>", "Code from the email"},
			confirm: []string{"That code didn't match. Enter the code from the latest message, or send a new one."}},
	} {
		t.Run(c.provider, func(t *testing.T) {
			sp := h.get(h.url+choose.href(t, "setup-"+c.provider), false)
			says(t, "the first setup page", sp, c.start...)
			f := sp.form(t)
			for k, v := range c.inputs {
				f[k] = v
			}
			setup := h.post("/ui/enroll/begin", f, nil)
			says(t, "the setup page", setup, c.setup...)
			says(t, "the setup page after a wrong code", h.post("/ui/enroll/confirm", with(setup.form(t), "code", "00000000"), nil), c.confirm...)
		})
	}

	// Sign-in: TOTP's lead, and email's before a code was sent.
	h.enrollTOTP("olga", "client")
	says(t, "the TOTP sign-in page", h.get(h.link("olga", map[string]string{"page": "verify", "audience": "client"}), true),
		"Enter the code from your authenticator app.")
	sp := h.get(h.link("pia", map[string]any{"page": "enroll", "audience": "client", "provider": "email"}), true)
	n := len(srv.Messages())
	setup := h.post("/ui/enroll/begin", with(sp.form(t), "input_email", "pia@x.example"), nil)
	if done := h.post("/ui/enroll/confirm", with(setup.form(t), "code", srv.LastCode(t, n, "pia@x.example")), nil); done.status != 200 {
		t.Fatalf("email confirmation: %d %.500s", done.status, done.body)
	}
	says(t, "the email sign-in page", h.get(h.link("pia", map[string]string{"page": "verify", "audience": "client"}), true),
		"We'll send a code to your email. Enter it here to continue.", `id="send"`)
}
