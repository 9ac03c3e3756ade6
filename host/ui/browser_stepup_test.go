package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// TestBrowserStepUpWithKey: a user whose only factor is a security key
// confirms changes on the security page with it, in headless Chromium with
// the virtual authenticator: the step-up page offers the key (the sign-in
// page's form and script), a cancelled ceremony is explained and the page
// stays, the key gets new backup codes, and then removes the key itself.
func TestBrowserStepUpWithKey(t *testing.T) {
	kp := newKeyPages(t)
	b, h := kp.b, kp.h
	key := b.addVirtualKey()
	kp.enroll("enroll", "Laptop key")
	sec := kp.onLocalhost(h.link("alice", map[string]string{"page": "security", "audience": "client", "return_url": kp.ret}))
	stepUp := func(name, button string) {
		t.Helper()
		h.clock.Add(4 * time.Minute) // past the key's send limit
		b.do("open the security page", chromedp.Navigate(sec), chromedp.WaitVisible(chromedp.CSS(button)))
		b.do(name, chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS("#webauthn-get")))
		b.shot(name)
		if b.text("#code") != "" || !strings.Contains(b.text("main"), "security key") {
			t.Errorf("%s: the step-up page: %s", name, b.text("main"))
		}
	}

	// Cancelled (the key cannot verify the user): said, nothing changed.
	stepUp("step-up for new codes", "#regenerate")
	key.userVerified(false)
	b.do("press the key, cancelled", chromedp.Click(chromedp.CSS("#webauthn-get")), chromedp.WaitVisible(chromedp.CSS("#webauthn-error")))
	b.shot("step-up-cancelled")
	if got := b.text("#webauthn-error"); !strings.Contains(got, "cancelled or timed out") || h.codesLeft("alice") != 10 {
		t.Errorf("a cancelled step-up: %q, %v codes left", got, h.codesLeft("alice"))
	}
	key.userVerified(true)

	// Pressed again on the same page (a new challenge): new codes.
	b.do("press the key", chromedp.Click(chromedp.CSS("#webauthn-get")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("new-codes")
	if n := len(recoveryCodeRE.FindAllString(b.text("#recovery-codes"), -1)); n != 10 || h.audited("alice", "recovery.issued", "issued") != 2 {
		t.Errorf("new codes after the key's step-up: %d shown, %d sets audited", n, h.audited("alice", "recovery.issued", "issued"))
	}

	// The key confirms its own removal.
	stepUp("step-up to remove the key", "#remove-webauthn")
	b.do("press the key to remove it", chromedp.Click(chromedp.CSS("#webauthn-get")), chromedp.WaitVisible(chromedp.CSS("#no-factors")))
	b.shot("removed")
	if got := h.enrollments("alice"); len(got) != 0 || !strings.Contains(b.text("main"), "The sign-in method was removed") {
		t.Errorf("after removing the key with its own step-up: %v, %s", got, b.text("main"))
	}
}

// TestBrowserStepUpWithSentCode: a user whose only factor is a mailed
// code gets new backup codes on the security page in headless Chromium:
// the step-up page offers "Send me a code" (no code field before), the
// code mailed then is typed, and the new codes are shown.
func TestBrowserStepUpWithSentCode(t *testing.T) {
	b := newBrowser(t)
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, start, emailClients(srv))
	const addr = "dana@x.example"
	if status, out := h.api("POST", "/v1/users/dana/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", status, out)
	}
	if status, out := h.api("POST", "/v1/users/dana/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, 0, addr)}); status != http.StatusOK {
		t.Fatalf("confirm: %d %v", status, out)
	}
	b.do("open the security page", chromedp.Navigate(h.link("dana", map[string]string{"page": "security", "audience": "client"})),
		chromedp.WaitVisible(chromedp.CSS("#regenerate")))
	b.do("step up for new codes", chromedp.Click(chromedp.CSS("#regenerate")), chromedp.WaitVisible(chromedp.CSS("#send-email")))
	b.shot("step-up-send")
	if b.text("#code") != "" {
		t.Errorf("a code field before any code was sent: %s", b.text("main"))
	}
	n := len(srv.Messages())
	b.do("send", chromedp.Click(chromedp.CSS("#send-email")), chromedp.WaitVisible(chromedp.CSS("#code")))
	b.shot("step-up-sent")
	b.do("enter the code", chromedp.SendKeys(chromedp.CSS("#code"), srv.LastCode(t, n, addr)),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	b.shot("new-codes")
	if got := len(recoveryCodeRE.FindAllString(b.text("#recovery-codes"), -1)); got != 10 || h.audited("dana", "recovery.issued", "issued") != 2 {
		t.Errorf("new codes after the mailed code's step-up: %d shown, %d sets audited", got, h.audited("dana", "recovery.issued", "issued"))
	}
}
