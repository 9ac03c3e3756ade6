package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestPushNotAnsweredIntoAnotherLogin: a push is answered only into the
// login that started it. The user presses "Send push" on their login
// page; someone with the password opens a login page of their own and
// presses it too, ticking "remember this device", several times at once:
// no push is sent for them, their page says one is already waiting (deny
// it if it is not yours) and never gets the transaction, each press
// audited push_pending. The user approves; their own page gets the allow,
// with their link's id. Once it is answered, the other page may send a
// push of its own. Before, the second page was handed the user's pending
// push and, polling faster, took the user's approval, and a remembered
// device with it.
func TestPushNotAnsweredIntoAnotherLogin(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("vic")
	h := startHost(t, time.Now(), duoStaff(t, emu), policy("  staff: {remember_device: {enabled: true, days: 30}}\n"))
	h.enrollDuo(emu, "vic", "staff")
	mine := h.get(h.link("vic", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false).form(t)
	theirs := h.get(h.link("vic", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false).form(t)
	theirs.Set("remember", "1")

	emu.ScriptPush("vic", duotest.Push{Result: "allow", After: 20 * time.Second})
	r := h.post("/ui/verify/push", mine, nil)
	wait := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(wait, "/ui/verify/wait?t=") {
		t.Fatalf("the user's push: %d %v %s", r.status, r.header, r.body)
	}
	for i, p := range burst.Run(4, func(int) page { return h.post("/ui/verify/push", theirs, nil) }) {
		if p.status != http.StatusOK || !strings.Contains(p.body, "A login request from somewhere else is already waiting on your phone. It did not come from this page: if you did not start it, deny it.") ||
			p.header.Get("Location") != "" || len(p.header.Values("Set-Cookie")) > 1 {
			t.Errorf("the other login's press %d while the user's push waits: %d %v %.400s", i, p.status, p.header, p.body)
		}
	}
	if n := pushesSent(emu); n != 1 {
		t.Fatalf("%d pushes sent, want 1 (the user's)", n)
	}
	if n := h.audited("vic", "challenge_sent", "deny"); n != 4 {
		t.Errorf("%d refused presses audited, want 4", n)
	}

	emu.SetClockOffset(21 * time.Second) // the user approves
	p := h.get(h.url+wait, false)
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/verify/done?t=") {
		t.Fatalf("the user's waiting page after the approval: %d %v", p.status, p.header)
	}
	if res := h.result(strings.TrimPrefix(loc, "/ui/verify/done?t=")); res["outcome"] != "allow" || res["user"] != "vic" {
		t.Errorf("the user's result: %v", res)
	}

	emu.ScriptPush("vic", duotest.Push{Result: "deny"})
	if p := h.post("/ui/verify/push", theirs, nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/verify/wait?t=") {
		t.Errorf("the other login's press once the first push was answered: %d %v %.300s", p.status, p.header, p.body)
	}
	if n := pushesSent(emu); n != 2 {
		t.Errorf("%d pushes sent, want 2", n)
	}
}

// TestDeniedPushFreesTheUsersLogin: someone with the password presses
// "Send push" first; the user's own page is told a request from somewhere
// else waits. The user denies it on the phone (Duo's emulator, for real
// over HTTPS) and presses again: their push goes out, and the other page's
// wait finds its request gone. The denial is audited once.
func TestDeniedPushFreesTheUsersLogin(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("vic")
	h := startHost(t, time.Now(), duoStaff(t, emu))
	h.enrollDuo(emu, "vic", "staff")
	mine := h.get(h.link("vic", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false).form(t)
	theirs := h.get(h.link("vic", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false).form(t)

	emu.ScriptPush("vic", duotest.Push{Result: "deny", After: 20 * time.Second})
	r := h.post("/ui/verify/push", theirs, nil)
	theirWait := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(theirWait, "/ui/verify/wait?t=") {
		t.Fatalf("the other login's push: %d %v %s", r.status, r.header, r.body)
	}
	if p := h.post("/ui/verify/push", mine, nil); p.status != http.StatusOK || !strings.Contains(p.body, "Once you deny it, send a push again") {
		t.Fatalf("the user's press while it waits: %d %v %.400s", p.status, p.header, p.body)
	}

	emu.SetClockOffset(21 * time.Second) // the user denies it
	// The host asks Duo about the other push at most every 2 s; the
	// user's next press comes later than that.
	h.clock.Add(3 * time.Second)
	emu.ScriptPush("vic", duotest.Push{Result: "allow", After: 20 * time.Second})
	if p := h.post("/ui/verify/push", mine, nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/verify/wait?t=") {
		t.Fatalf("the user's press once they denied the other push: %d %v %.400s", p.status, p.header, p.body)
	}
	if n := pushesSent(emu); n != 2 {
		t.Errorf("%d pushes sent, want 2", n)
	}
	if p := h.get(h.url+theirWait, false); p.status != http.StatusOK || !strings.Contains(p.body, "This login request is no longer waiting") {
		t.Errorf("the other login's wait page: %d %v %.400s", p.status, p.header, p.body)
	}
	if n := h.audited("vic", "verify", "deny"); n != 1 {
		t.Errorf("%d denials audited, want 1", n)
	}
}
