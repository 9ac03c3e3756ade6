package ui_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// activateRE finds the activation code in the Duo setup page's
// activation link.
var activateRE = regexp.MustCompile(`href="https://[^"/]+/activate/([^"]+)"`)

// TestStaleDuoActivationNotAdopted: an intruder who has only dana's
// password, while she has no factor, begins a Duo setup on her security
// page and activates the activation with their own phone, and never
// finishes here. Later dana sets up an authenticator app and adds Duo
// after a step-up: Duo already knows "dana" (with the intruder's phone),
// but that device is not adopted as hers. The setup asks for a passcode
// typed here; without one (the form posted empty, a wrong one) Duo stays
// off, and only a passcode Duo accepts for the user turns it on.
func TestStaleDuoActivationNotAdopted(t *testing.T) {
	emu := startEmulator(t)
	h := startHost(t, start, totpBoth, duoBoth(t, emu))

	// The intruder: a Duo setup begun while dana has no factor, activated
	// on the intruder's phone, never finished at the host.
	sec := h.link("dana", map[string]string{"page": "security", "audience": "client"})
	sp := h.get(h.url+h.get(sec, false).href(t, "add-duo"), false)
	if sp.status != 200 || !strings.Contains(sp.body, `id="begin"`) {
		t.Fatalf("Duo setup page of a user without a factor: %d %.300s", sp.status, sp.body)
	}
	setup := h.post("/ui/enroll/begin", sp.form(t), nil)
	act := activateRE.FindStringSubmatch(setup.body)
	if act == nil {
		t.Fatalf("Duo begin shows no activation link: %d %.500s", setup.status, setup.body)
	}
	if err := emu.ActivateEnrollment("duo://" + act[1]); err != nil {
		t.Fatal(err)
	}

	// dana: her authenticator app, then Duo after a step-up with it.
	secret := h.enrollTOTP("dana", "client")
	link := h.stepUpAdd("dana", secret, "duo")
	page := h.get(h.url+link, false)
	if page.status != 200 || !strings.Contains(page.body, `id="begin"`) {
		t.Fatalf("the link to add Duo: %d %.300s", page.status, page.body)
	}
	begun := h.post("/ui/enroll/begin", page.form(t), nil)
	if got := strings.Join(h.enrollments("dana"), ","); got != "duo/pending,totp/active" {
		t.Fatalf("enrollments after beginning Duo: %s, want Duo pending (the device Duo knows not adopted) (%d %.500s)", got, begun.status, begun.body)
	}
	if begun.status != 200 || !strings.Contains(begun.body, `id="code"`) || !strings.Contains(begun.body, "passcode") {
		t.Fatalf("begin for a user Duo knows: want a passcode field: %d %.1000s", begun.status, begun.body)
	}
	if strings.Contains(begun.body, `id="qr"`) || strings.Contains(begun.body, "I&#39;ve scanned it") {
		t.Errorf("begin for a user Duo knows shows an activation: %.1000s", begun.body)
	}
	strict(t, "Duo passcode setup page", begun)
	confirm := begun.form(t)

	// No proof, or a wrong one: Duo stays off.
	for _, code := range []string{"", "000000", "12-34!"} {
		r := h.post("/ui/enroll/confirm", with(confirm, "code", code), nil)
		if r.status != 200 || !strings.Contains(r.body, `id="error"`) {
			t.Errorf("confirm with %q: %d %.300s", code, r.status, r.body)
		}
		if got := strings.Join(h.enrollments("dana"), ","); got != "duo/pending,totp/active" {
			t.Fatalf("enrollments after confirming with %q: %s", code, got)
		}
	}
	if n := h.audited("dana", "enroll.confirm", "pending"); n != 3 {
		t.Errorf("%d refused confirmations audited, want 3", n)
	}

	// A passcode Duo accepts for "dana" (from the device Duo holds) is the
	// proof: Duo is on.
	emu.AddPasscode("dana", "271828")
	if r := h.post("/ui/enroll/confirm", with(confirm, "code", "271828"), nil); r.status != http.StatusOK || !strings.Contains(r.body, "You&#39;re all set") {
		t.Fatalf("confirm with a passcode Duo accepts: %d %.500s", r.status, r.body)
	}
	if got := strings.Join(h.enrollments("dana"), ","); got != "duo/active,totp/active" {
		t.Errorf("enrollments after the passcode: %s", got)
	}
}
