package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
)

// TestDuoTextedPasscodesThroughUI: a Duo user whose phone has only SMS
// signs in on the verify page: its "Send me codes" button (offered
// because Duo's capabilities list a factor it sends on request) has Duo
// text passcodes, the page then says where, and a texted passcode signs
// in. A burst of presses texts once; past the send limit the page says
// so and nothing more is texted.
func TestDuoTextedPasscodesThroughUI(t *testing.T) {
	emu := startEmulator(t)
	emu.AddDevice("sam", "phone", "sms")
	h := startHost(t, time.Now(), duoStaff(t, emu))
	h.enrollDuo(emu, "sam", "staff")
	first := h.get(h.link("sam", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false)
	if !strings.Contains(first.body, `id="send-codes" name="factor" value="sms"`) {
		t.Fatalf("the verify page offers no button to have codes sent: %.1500s", first.body)
	}
	f := first.form(t)
	texts := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "sms" {
				n++
			}
		}
		return n
	}

	var sent []string
	for _, r := range burst.Run(6, func(int) page { return h.post("/ui/verify/send", with(f, "factor", "sms"), nil) }) {
		if loc := r.header.Get("Location"); r.status == http.StatusSeeOther && strings.HasPrefix(loc, "/ui/verify?t=") {
			sent = append(sent, loc)
		} else if r.status != http.StatusOK || !strings.Contains(r.body, "A code was sent a moment ago") {
			t.Errorf("a press in the burst: %d %.300s", r.status, r.body)
		}
	}
	if len(sent) != 1 || texts() != 1 {
		t.Fatalf("a burst of 6 presses: %d sent pages, %d texts; want 1 and 1", len(sent), texts())
	}
	page := h.get(h.url+sent[0], false)
	if page.status != 200 || !strings.Contains(page.body, "Duo texted passcodes to your phone ending in") || !strings.Contains(page.body, `id="code"`) {
		t.Fatalf("the page after the text: %d %.1000s", page.status, page.body)
	}
	strict(t, "the page after the text", page)
	codes := emu.SMSPasscodes("sam")
	if len(codes) == 0 {
		t.Fatal("nothing texted")
	}
	if r := h.post("/ui/verify/code", with(page.form(t), "code", codes[0]), nil); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/verify/done?t=") {
		t.Fatalf("the texted passcode: %d %v %.500s", r.status, r.header, r.body)
	}
	// A factor the provider does not send is not listed.
	if r := h.post("/ui/verify/send", with(f, "factor", "phone"), nil); r.status == http.StatusSeeOther || texts() != 1 {
		t.Errorf("send of factor phone: %d, %d texts", r.status, texts())
	}
}
