package ui_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// emailClients is the email provider's block for clients, sending through
// srv (plain SMTP: the server is on 127.0.0.1).
func emailClients(srv *emailtest.Server) string {
	return fmt.Sprintf(`  email:
    enabled: true
    clients: true
    settings:
      smtp_host: 127.0.0.1
      smtp_port: %d
      smtp_tls: none
      from: ACME <no-reply@acme.example>
      issuer: ACME
      code_key: c2l4dHktZm91ciBieXRlcyBvZiBhIHRlc3Qga2V5IG1hZGUgZm9yIHRoaXMgdGVzdA==
      resend_after: 30s
`, srv.Port)
}

// TestBrowserEmail: enroll the email provider with an address the link
// prefilled and the code mailed by a real SMTP server on 127.0.0.1; then
// log in: "Send code", the code field with "Resend in N s" counted down by
// the page's script, an early resend refused by the server (on the host's
// injected clock, whatever the browser counted), a resend once the
// throttle passed, the first code no longer accepted and the latest one
// verified. The audit log shows challenge_sent before verify.
func TestBrowserEmail(t *testing.T) {
	b := newBrowser(t)
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), emailClients(srv))
	const addr = "dana@x.example"

	b.do("open the enroll link", chromedp.Navigate(h.link("dana", map[string]any{
		"page": "enroll", "audience": "client", "provider": "email", "inputs": map[string]string{"email": addr}})),
		chromedp.WaitVisible(chromedp.CSS("#input-email")))
	attrs := run(b, "address field", chromedp.Attributes(chromedp.CSS("#input-email")))
	if attrs["type"] != "email" || attrs["value"] != addr || attrs["name"] != "input_email" {
		t.Errorf("address field %v, want a prefilled email input", attrs)
	}
	if _, ok := attrs["required"]; !ok {
		t.Errorf("address field %v is not required", attrs)
	}
	b.shot("enroll-address")
	n := len(srv.Messages())
	b.do("send the enrollment code", chromedp.Click(chromedp.CSS("#begin")), chromedp.WaitVisible(chromedp.CSS("#code")))
	if hint := b.text(".hint"); !strings.Contains(hint, "d***@x.example") {
		t.Errorf("setup page says %q, want the masked address", hint)
	}
	b.shot("enroll-code")
	b.do("confirm", chromedp.SendKeys(chromedp.CSS("#code"), srv.LastCode(t, n, addr)),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("enroll-done")

	// Log in.
	b.do("open the verify link", chromedp.Navigate(h.link("dana", map[string]any{"page": "verify", "audience": "client", "return_url": "/app/after-login"})),
		chromedp.WaitVisible(chromedp.CSS("#send")))
	if lead := b.text(".lead"); !strings.Contains(lead, "send a code") {
		t.Errorf("login page lead %q", lead)
	}
	b.shot("verify-send")
	n = len(srv.Messages())
	b.do("send", chromedp.Click(chromedp.CSS("#send")), chromedp.WaitVisible(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#resend:disabled")))
	first := srv.LastCode(t, n, addr)
	sentPage := run(b, "location", chromedp.Location())
	if lead := b.text(".lead"); !strings.Contains(lead, "We sent a code to d***@x.example") {
		t.Errorf("after sending: %q", lead)
	}
	if label := b.text("#resend"); !strings.HasPrefix(label, "Resend in ") {
		t.Errorf("resend button %q, want a countdown", label)
	}
	b.shot("verify-sent")

	// A browser without the script (the button enabled at once) asks
	// again too early: the server refuses, nothing is mailed. The button
	// is enabled and pressed in one script task: as two steps, the page's
	// countdown could disable it again in between (it does every second),
	// and the press did nothing (a CI run timed out waiting here).
	sends := len(srv.Messages())
	b.do("early resend", chromedp.Evaluate[chromedp.Void](`(() => { const b = document.querySelector("#resend"); b.disabled = false; b.click(); })()`),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	if notice := b.text("#notice"); !strings.Contains(notice, "30 seconds") {
		t.Errorf("early resend: %q", notice)
	}
	b.shot("verify-resend-refused")

	// 29 s later by the host's clock: the page says 1 s, the script
	// counts it down and enables the button; the server still refuses.
	h.clock.Add(29 * time.Second)
	b.do("reload", chromedp.Navigate(sentPage), chromedp.WaitVisible(chromedp.CSS("#resend")))
	if label := b.text("#resend"); label != "Resend in 1 s" && label != "Resend code" {
		t.Errorf("29 s after sending: %q", label)
	}
	b.do("countdown", chromedp.WaitEnabled(chromedp.CSS("#resend")))
	if label := b.text("#resend"); label != "Resend code" {
		t.Errorf("after the countdown: %q", label)
	}
	b.do("resend a second early", chromedp.Click(chromedp.CSS("#resend")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if notice := b.text("#notice"); !strings.Contains(notice, "a second") {
		t.Errorf("resend a second early: %q", notice)
	}
	if got := len(srv.Messages()); got != sends {
		t.Errorf("%d mails sent by early resends, want none", got-sends)
	}

	// Once the throttle passed: a new code.
	h.clock.Add(2 * time.Second)
	b.do("resend", chromedp.WaitEnabled(chromedp.CSS("#resend")), chromedp.Click(chromedp.CSS("#resend")),
		chromedp.WaitVisible(chromedp.CSS("#resend:disabled")))
	latest := srv.LastCode(t, sends, addr)
	if got := len(srv.Messages()); got != sends+1 {
		t.Errorf("%d mails sent by one resend, want 1", got-sends)
	}
	b.shot("verify-resent")

	if first != latest {
		b.do("the first code", chromedp.SendKeys(chromedp.CSS("#code"), first), chromedp.Click(chromedp.CSS("#submit-code")),
			chromedp.WaitVisible(chromedp.CSS("#error")))
		if msg := b.text("#error"); !strings.Contains(msg, "isn't right") {
			t.Errorf("the superseded code: %q", msg)
		}
		b.shot("verify-old-code")
	}
	b.do("the latest code", chromedp.SendKeys(chromedp.CSS("#code"), latest), chromedp.Click(chromedp.CSS("#submit-code")),
		chromedp.WaitVisible(chromedp.CSS("#continue")))
	if title := b.text("h1"); title != "You're verified" {
		t.Errorf("result page heading %q", title)
	}
	b.shot("verify-done")

	var got []string
	for _, e := range h.audit("dana") {
		if e["event"] == "challenge_sent" || e["event"] == "verify" {
			got = append(got, fmt.Sprint(e["event"], "/", e["outcome"]))
		}
	}
	want := []string{"challenge_sent/sent", "challenge_sent/already_sent", "challenge_sent/already_sent", "challenge_sent/sent"}
	if first != latest {
		want = append(want, "verify/deny")
	}
	want = append(want, "verify/allow")
	if !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
}

// audit returns the user's audit entries, oldest first.
func (h *testHost) audit(user string) []map[string]any {
	h.t.Helper()
	_, out := h.api("GET", "/v1/audit?user="+user+"&limit=1000", adminKey, nil)
	var got []map[string]any
	for _, e := range out["entries"].([]any) {
		got = append(got, e.(map[string]any))
	}
	return got
}
