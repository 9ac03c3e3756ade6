package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestSecurityAddNeedsStepUp: once the user has a factor, the security
// page adds another (or finishes one started) only after a step-up: it
// shows no link to an enrollment before, a wrong code opens none and
// counts, and one right code sent many times at once opens it once. A
// user with no factor yet adds the first one directly.
func TestSecurityAddNeedsStepUp(t *testing.T) {
	emu := startEmulator(t)
	h := startHost(t, start, totpBoth, duoBoth(t, emu))

	// No factor yet: nothing to step up with; the page links to the setup.
	p := h.get(h.link("carl", map[string]string{"page": "security", "audience": "client"}), false)
	if !strings.Contains(p.body, `id="add-totp"`) || !strings.Contains(p.body, `href="/ui/enroll?t=`) || strings.Contains(p.body, `value="add:`) {
		t.Fatalf("security page of a user without a factor: %d %s", p.status, p.body)
	}

	secret := h.enrollTOTP("alice", "client")
	h.clock.Add(30 * time.Second) // the confirming code is spent
	sec := h.link("alice", map[string]string{"page": "security", "audience": "client"})
	p = h.get(sec, false)
	strict(t, "security page", p)
	if !strings.Contains(p.body, `value="add:duo"`) || !strings.Contains(p.body, `id="add-duo"`) || !strings.Contains(p.body, `id="add-stepup-hint"`) {
		t.Fatalf("security page offers no step-up to add Duo: %s", p.body)
	}
	if strings.Contains(p.body, "/ui/enroll?t=") {
		t.Fatalf("security page of a user with a factor links to an enrollment before a step-up: %s", p.body)
	}
	f := p.form(t)

	// Actions that cannot be taken change nothing.
	for _, action := range []string{"add:totp", "add:nope", "add:", "add:webauthn"} {
		if r := h.post("/ui/security/stepup", with(f, "action", action), nil); r.status != 200 || !strings.Contains(r.body, "can&#39;t be made") {
			t.Errorf("action %q: %d %.300s", action, r.status, r.body)
		}
	}

	s := h.post("/ui/security/stepup", with(f, "action", "add:duo"), nil)
	if s.status != 200 || !strings.Contains(s.body, "To add Duo Mobile") || !strings.Contains(s.body, "Confirm and continue") {
		t.Fatalf("add step-up page: %d %s", s.status, s.body)
	}
	strict(t, "add step-up page", s)
	sf := with(s.form(t), "provider", "totp")
	if r := h.post("/ui/security/confirm", with(sf, "code", "000000"), nil); r.status != 200 || !strings.Contains(r.body, "isn&#39;t right") {
		t.Errorf("wrong code: %d %.300s", r.status, r.body)
	}
	if n := h.audited("alice", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want the wrong code's 1", n)
	}

	// One right code sent 8 times at once: one step-up is allowed and
	// opens the enrollment; the others are refused as replays.
	var opened []string
	for _, r := range burst.Run(8, func(int) page {
		return h.post("/ui/security/confirm", with(sf, "code", totpCode(t, secret, h.clock.Now())), nil)
	}) {
		switch {
		case r.status == http.StatusSeeOther && strings.HasPrefix(r.header.Get("Location"), "/ui/enroll?t="):
			opened = append(opened, r.header.Get("Location"))
		case r.status == 200 && strings.Contains(r.body, `id="error"`):
		default:
			t.Errorf("burst answer: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
		}
	}
	if len(opened) != 1 {
		t.Fatalf("one code sent 8 times at once opened the enrollment %d times, want once", len(opened))
	}
	if a := h.audited("alice", "verify", "allow"); a != 1 {
		t.Errorf("%d allowed verifies audited, want the step-up's 1", a)
	}
	e := h.get(h.url+opened[0], false)
	if e.status != 200 || !strings.Contains(e.body, `id="begin"`) {
		t.Fatalf("the enrollment the step-up opened: %d %.300s", e.status, e.body)
	}

	// Started, not finished: finishing it is adding it, so it takes a
	// step-up too.
	e = h.post("/ui/enroll/begin", e.form(t), nil)
	if got := strings.Join(h.enrollments("alice"), ","); !strings.Contains(got, "duo/pending") {
		t.Fatalf("after beginning Duo: %v (%d %.300s)", got, e.status, e.body)
	}
	p = h.get(sec, false)
	if !strings.Contains(p.body, `id="finish-duo"`) || !strings.Contains(p.body, `value="add:duo"`) || strings.Contains(p.body, "/ui/enroll?t=") {
		t.Errorf("a pending factor is finished without a step-up: %s", p.body)
	}
}

// TestSecurityAddStepUpRefusesFailmodeAllow: with Duo down and its
// failmode safe, a Duo step-up is allowed without a code being checked;
// such an allow never opens an enrollment (it never stands for the
// user). With Duo answering, the same step-up does.
func TestSecurityAddStepUpRefusesFailmodeAllow(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("fay")
	entry, err := duoconfig.Entry(emu, t.TempDir(), duoconfig.Options{Failmode: "safe", Timeout: 5 * time.Second, Clients: true})
	if err != nil {
		t.Fatal(err)
	}
	h := startHost(t, start, totpBoth, entry)
	h.enrollDuo(emu, "fay", "client")
	f := h.get(h.link("fay", map[string]string{"page": "security", "audience": "client"}), false).form(t)
	sf := with(h.post("/ui/security/stepup", with(f, "action", "add:totp"), nil).form(t), "provider", "duo")

	emu.Fail(1, duotest.Failure{Path: "/auth/v2/auth", Status: 500})
	r := h.post("/ui/security/confirm", with(sf, "code", "123456"), nil)
	if r.status == http.StatusSeeOther || !strings.Contains(r.body, `id="error"`) {
		t.Fatalf("a failmode allow as the step-up: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
	}
	if n := h.audited("fay", "failmode", "allow"); n != 1 {
		t.Errorf("%d failmode allows audited, want the step-up's 1", n)
	}
	if got := strings.Join(h.enrollments("fay"), ","); got != "duo/active" {
		t.Errorf("enrollments after the refused step-up: %s", got)
	}

	emu.AddPasscode("fay", "314159")
	if r := h.post("/ui/security/confirm", with(sf, "code", "314159"), nil); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/enroll?t=") {
		t.Errorf("the step-up with Duo answering: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
	}
}
