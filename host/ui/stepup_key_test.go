package ui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// keyProvider is the webauthn provider's block for clients, for a key
// that answers as http://localhost:8080.
const keyProvider = `  webauthn:
    enabled: true
    clients: true
    settings:
      rp_id: localhost
      rp_display_name: ACME Hosting
      origins: http://localhost:8080
`

// enrollKeyAPI enrolls a new software key for user through the API and
// returns it, with the recovery codes its confirmation gave (if any).
func (h *testHost) enrollKeyAPI(user string) *webauthntest.Authenticator {
	h.t.Helper()
	status, out := h.api("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "webauthn", "audience": "client"})
	d, _ := out["display"].(map[string]any)
	pub, _ := d["public"].(string)
	if status != http.StatusCreated || pub == "" {
		h.t.Fatalf("enroll a key for %s: %d %v", user, status, out)
	}
	key := webauthntest.New("http://localhost:8080")
	att, err := key.Create(pub)
	if err != nil {
		h.t.Fatal(err)
	}
	if status, out := h.api("POST", "/v1/users/"+user+"/enrollments/webauthn/confirm", appKey, map[string]any{"credential": json.RawMessage(att)}); status != http.StatusOK {
		h.t.Fatalf("confirm %s's key: %d %v", user, status, out)
	}
	return key
}

// keyStart posts a key form (t, csrf, provider) to a start URL and
// returns its status and JSON answer (none for a refused form).
func (h *testHost) keyStart(path string, form url.Values) (int, map[string]string) {
	h.t.Helper()
	p := h.post(path, with(form, "provider", "webauthn"), nil)
	out := map[string]string{}
	if err := json.Unmarshal([]byte(p.body), &out); err != nil && p.status == http.StatusOK {
		h.t.Fatalf("%s: not JSON: %d %.300s", path, p.status, p.body)
	}
	return p.status, out // a refused form (token, CSRF) is a page
}

// keyAnswer is the form that answers a started key challenge: the token
// and CSRF value the start gave, and the key's assertion.
func keyAnswer(t *testing.T, start map[string]string, key *webauthntest.Authenticator) url.Values {
	t.Helper()
	ans, err := key.Get(start["public"])
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"t": {start["t"]}, "csrf": {start["csrf"]}, "provider": {"webauthn"}, "txid": {start["txid"]}, "credential": {ans}}
}

// TestSecurityStepUpWithKey: a user whose only factor is a security key
// steps up with it on the security page: the step-up page offers the key
// (no code field), its start gives a token bound to that step-up's
// challenge, and the assertion gets new backup codes once. Refused, with
// nothing changed: an assertion posted with the step-up token from
// before the start (no challenge bound), with another step-up's token
// (another action's challenge), with a sign-in page's token, a sign-in
// challenge's assertion as a step-up, a step-up's assertion at sign-in,
// the same assertion again, and a start without the CSRF value. One
// assertion posted eight times at once gives new codes once.
func TestSecurityStepUpWithKey(t *testing.T) {
	h := startHost(t, start, keyProvider)
	key := h.enrollKeyAPI("alice")
	sec := h.link("alice", map[string]string{"page": "security", "audience": "client"})
	f := h.get(sec, false).form(t)
	stepUp := func(action string) (page, url.Values) {
		t.Helper()
		s := h.post("/ui/security/stepup", with(f, "action", action), nil)
		return s, s.form(t)
	}
	s, regen := stepUp("regenerate")
	if !strings.Contains(s.body, `data-start="/ui/security/key/start"`) || !strings.Contains(s.body, `id="webauthn-get"`) ||
		!names(s.body, "webauthn.js") || strings.Contains(s.body, `id="code"`) {
		t.Fatalf("step-up page of a key user: %d %s", s.status, s.body)
	}
	strict(t, "key step-up page", s)
	if status, _ := h.keyStart("/ui/security/key/start", with(regen, "csrf", "")); status != http.StatusForbidden {
		t.Errorf("a start without the CSRF value: %d, want 403", status)
	}
	status, st := h.keyStart("/ui/security/key/start", regen)
	if status != http.StatusOK || st["t"] == "" || st["csrf"] == "" || st["public"] == "" || st["t"] == regen.Get("t") {
		t.Fatalf("start: %d %v", status, st)
	}
	ans := keyAnswer(t, st, key)

	// The removal's own step-up, started: its token is bound to its own
	// challenge, and the regeneration's assertion does not answer it.
	_, remove := stepUp("remove:webauthn")
	_, rst := h.keyStart("/ui/security/key/start", remove)
	// A sign-in page's challenge, answered by the key.
	vf := h.get(h.link("alice", map[string]string{"page": "verify", "audience": "client"}), false).form(t)
	_, sst := h.keyStart("/ui/verify/key/start", vf)
	signIn := keyAnswer(t, sst, key)

	codes := codeRE.FindAllStringSubmatch
	for _, tt := range []struct {
		name, path string
		form       url.Values
	}{
		{"the step-up token from before the start", "/ui/security/confirm", with(with(ans, "t", regen.Get("t")), "csrf", regen.Get("csrf"))},
		{"another action's started token", "/ui/security/confirm", with(with(ans, "t", rst["t"]), "csrf", rst["csrf"])},
		{"a sign-in assertion with the step-up's token", "/ui/security/confirm", with(with(signIn, "t", st["t"]), "csrf", st["csrf"])},
		{"a sign-in assertion and txid with the step-up's token", "/ui/security/confirm", with(with(with(signIn, "t", st["t"]), "csrf", st["csrf"]), "txid", sst["txid"])},
		{"the step-up's assertion at sign-in", "/ui/verify/key", with(with(ans, "t", sst["t"]), "csrf", sst["csrf"])},
		{"the step-up's assertion and txid with the sign-in page's token", "/ui/verify/key", with(with(ans, "t", vf.Get("t")), "csrf", vf.Get("csrf"))},
		{"the step-up's token at sign-in", "/ui/verify/key", ans},
		{"the sign-in's token at the step-up", "/ui/security/confirm", signIn},
	} {
		r := h.post(tt.path, tt.form, nil)
		if len(codes(r.body, -1)) != 0 || (r.status == http.StatusSeeOther && strings.Contains(r.header.Get("Location"), "done")) ||
			h.codesLeft("alice") != 10 || h.keysOf("alice") != 1 {
			t.Errorf("%s: %d %s %.300s", tt.name, r.status, r.header.Get("Location"), r.body)
		}
	}
	if n := h.audited("alice", "recovery.issued", "issued"); n != 1 {
		t.Fatalf("%d sets of backup codes audited after the refusals, want the first key's 1", n)
	}

	// A fresh start of the regeneration, answered: new codes, once.
	_, st = h.keyStart("/ui/security/key/start", regen)
	ans = keyAnswer(t, st, key)
	r := h.post("/ui/security/confirm", ans, nil)
	if r.status != 200 || len(codes(r.body, -1)) != 10 {
		t.Fatalf("step-up with the key: %d %.500s", r.status, r.body)
	}
	if r := h.post("/ui/security/confirm", ans, nil); len(codes(r.body, -1)) != 0 {
		t.Errorf("the same assertion again: %d %.300s", r.status, r.body)
	}

	// One assertion posted eight times at once: new codes once.
	_, st = h.keyStart("/ui/security/key/start", regen)
	ans = keyAnswer(t, st, key)
	issued := 0
	for _, r := range burst.Run(8, func(int) page { return h.post("/ui/security/confirm", ans, nil) }) {
		if len(codes(r.body, -1)) == 10 {
			issued++
		}
	}
	if n := h.audited("alice", "recovery.issued", "issued"); issued != 1 || n != 3 {
		t.Errorf("one assertion 8 times at once: %d new sets shown, %d audited in all; want 1 and 3", issued, n)
	}
}
