package ui_test

import (
	"net/http"
	"regexp"
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

// TestDuoSetupTextedPasscodesThroughUI: the setup of a user Duo already
// knows, with only an SMS phone, offers "Send me codes" beside the
// passcode field; a burst of presses texts at most the send limit (3),
// the rest say the limit was reached; a texted passcode confirms.
func TestDuoSetupTextedPasscodesThroughUI(t *testing.T) {
	emu := startEmulator(t)
	emu.AddDevice("sue", "phone", "sms")
	h := startHost(t, start, totpBoth, duoBoth(t, emu))
	sec := h.link("sue", map[string]string{"page": "security", "audience": "client"})
	sp := h.get(h.url+h.get(sec, false).href(t, "add-duo"), false)
	begun := h.post("/ui/enroll/begin", sp.form(t), nil)
	if begun.status != 200 || !strings.Contains(begun.body, `id="send-codes" name="factor" value="sms"`) {
		t.Fatalf("the setup of a user Duo knows offers no button to have codes sent: %d %.1500s", begun.status, begun.body)
	}
	// The confirm form the button is in: its sealed display too.
	f := begun.form(t)
	if m := regexp.MustCompile(`name="display" value="([^"]+)"`).FindStringSubmatch(begun.body); m != nil {
		f.Set("display", m[1])
	} else {
		t.Fatal("the setup page's form has no display")
	}
	texts := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "sms" {
				n++
			}
		}
		return n
	}
	sent, limited := 0, 0
	for _, r := range burst.Run(6, func(int) page { return h.post("/ui/enroll/send", with(f, "factor", "sms"), nil) }) {
		switch {
		case r.status == 200 && strings.Contains(r.body, "Duo texted passcodes to your phone ending in"):
			sent++
		case r.status == 200 && strings.Contains(r.body, "Too many codes were sent"):
			limited++
		default:
			i := strings.Index(r.body, "<main")
			t.Errorf("a press in the burst: %d %.1500s", r.status, r.body[max(i, 0):])
		}
	}
	if sent != 3 || limited != 3 || texts() != 3 {
		t.Fatalf("a burst of 6 presses: %d sent, %d limited, %d texts; want 3, 3, 3", sent, limited, texts())
	}
	codes := emu.SMSPasscodes("sue")
	if len(codes) == 0 {
		t.Fatal("nothing texted")
	}
	if r := h.post("/ui/enroll/confirm", with(f, "code", codes[0]), nil); r.status != http.StatusOK || !strings.Contains(r.body, "Save your backup codes") {
		i := strings.Index(r.body, "<main")
		t.Fatalf("confirm with the texted passcode: %d %.800s", r.status, r.body[max(i, 0):])
	}
}
