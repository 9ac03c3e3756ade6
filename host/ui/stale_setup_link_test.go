package ui_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// Setup links the UI derives (the login page's "enroll", the security
// page) are checked against the user's factors at each use: the enroll
// page, its begin and its confirm. One made while the user had no factor
// works only while that lasts; one signed after a step-up's allow adds one
// factor, or one key, and is spent.

// refusedSetup reports whether p is the page of a setup link the user's
// factors no longer allow.
func refusedSetup(p page) bool {
	return p.status == http.StatusForbidden && strings.Contains(p.body, "This setup link no longer works")
}

// beginSetup opens a setup link and begins the TOTP setup: the begin's
// form, the setup's secret and the confirm's form.
func (h *testHost) beginSetup(link string) (begin url.Values, secret string, confirm url.Values) {
	h.t.Helper()
	sp := h.get(h.url+link, false)
	if sp.status != 200 || !strings.Contains(sp.body, `id="begin"`) {
		h.t.Fatalf("setup link while it should work: %d %.300s", sp.status, sp.body)
	}
	begin = sp.form(h.t)
	setup := h.post("/ui/enroll/begin", begin, nil)
	m := secretRE.FindStringSubmatch(setup.body)
	if m == nil {
		h.t.Fatalf("begin: %d %.300s", setup.status, setup.body)
	}
	return begin, strings.ReplaceAll(m[1], " ", ""), setup.form(h.t)
}

// staleUses are the three uses of a setup link, each checked again: its
// page, a begin, and the confirmation of a setup begun while the link was
// still good (with the right code).
func staleUses(h *testHost, link string, begin url.Values, secret string, confirm url.Values) []struct {
	name string
	do   func() page
} {
	return []struct {
		name string
		do   func() page
	}{
		{"open the setup page", func() page { return h.get(h.url+link, false) }},
		{"begin a setup", func() page { return h.post("/ui/enroll/begin", begin, nil) }},
		{"confirm the setup begun before", func() page {
			return h.post("/ui/enroll/confirm", with(confirm, "code", totpCode(h.t, secret, h.clock.Now())), nil)
		}},
	}
}

// tokenClaims reads the claims of a link's token (signed, not encrypted).
func tokenClaims(t *testing.T, link string) map[string]any {
	t.Helper()
	_, tok, _ := strings.Cut(link, "?t=")
	payload, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatalf("token of %q: %v", link, err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStaleLoginSetupLink: a password-only attacker opens the login page
// while erin has no factor (policy require: "enroll"), keeps the TOTP
// setup link and even begins a setup with it. Once erin set up Duo, the
// link is refused at each use (page, begin, and the confirmation of the
// setup begun before, with the right code): the attacker's TOTP is never
// confirmed, so the attacker cannot log in with it.
func TestStaleLoginSetupLink(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("erin") // Duo knows erin: a passcode confirms her Duo
	h := startHost(t, start, totpClients, duoBoth(t, emu), policy("  clients: {require: true}\n"))

	p := h.get(h.link("erin", map[string]string{"page": "verify", "audience": "client"}), false)
	if !strings.Contains(p.body, `id="setup-totp"`) {
		t.Fatalf("login page of a user without a factor: %d %s", p.status, p.body)
	}
	stale := p.href(t, "setup-totp")
	begin, secret, confirm := h.beginSetup(stale) // while erin has no factor, it works

	h.enrollDuo(emu, "erin", "client")
	h.clock.Add(5 * time.Minute) // within the login link's lifetime
	for _, use := range staleUses(h, stale, begin, secret, confirm) {
		t.Run(use.name, func(t *testing.T) {
			if r := use.do(); !refusedSetup(r) {
				t.Errorf("stale login setup link: %d %.300s", r.status, r.body)
			}
			if got := strings.Join(h.enrollments("erin"), ","); got != "duo/active,totp/pending" {
				t.Errorf("enrollments after the refusal: %s, want Duo alone active", got)
			}
		})
	}
	// The attacker's code logs nobody in: the login asks for erin's Duo.
	h.clock.Add(30 * time.Second)
	v := h.get(h.link("erin", map[string]string{"page": "verify", "audience": "client", "provider": "totp"}), false)
	if strings.Contains(v.body, `id="setup-`) || strings.Contains(v.body, `name="provider" value="totp"`) || !strings.Contains(v.body, `name="provider" value="duo"`) {
		t.Errorf("login page after erin's Duo: it must ask for her Duo alone: %s", v.body)
	}
}

// TestStaleSecuritySetupLink: the security page of carl, without a
// factor, links to each setup; someone who saw it keeps the TOTP link and
// begins a setup. Once carl has Duo, that link is refused at each use
// without any step-up, nothing enrolled. The link a step-up's allow opens
// is another one (marked as signed after a step-up, with its own expiry),
// it adds the TOTP once, and is then spent.
func TestStaleSecuritySetupLink(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("carl")
	h := startHost(t, start, totpBoth, duoBoth(t, emu))

	sec := h.link("carl", map[string]string{"page": "security", "audience": "client"})
	stale := h.get(sec, false).href(t, "add-totp")
	begin, secret, confirm := h.beginSetup(stale)
	if c := tokenClaims(t, stale); c["su"] != nil || c["fs"] != nil || c["th"] != "security" {
		t.Errorf("setup link of a user without a factor: claims %v", c)
	}

	h.enrollDuo(emu, "carl", "client")
	h.clock.Add(time.Minute)
	for _, use := range staleUses(h, stale, begin, secret, confirm) {
		t.Run(use.name, func(t *testing.T) {
			if r := use.do(); !refusedSetup(r) || !strings.Contains(r.body, "Open your security page again") {
				t.Errorf("stale security setup link: %d %.300s", r.status, r.body)
			}
			if got := strings.Join(h.enrollments("carl"), ","); got != "duo/active,totp/pending" {
				t.Errorf("enrollments after the refusal: %s, want Duo alone active", got)
			}
		})
	}
	if n := h.audited("carl", "verify", "allow") + h.audited("carl", "verify", "deny"); n != 0 {
		t.Errorf("%d verifies audited: the refusals are plain reads", n)
	}

	// A step-up's allow opens a link of its own.
	emu.AddPasscode("carl", "314159")
	sf := with(h.post("/ui/security/stepup", with(h.get(sec, false).form(t), "action", "add:totp"), nil).form(t), "provider", "duo")
	r := h.post("/ui/security/confirm", with(sf, "code", "314159"), nil)
	fresh := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(fresh, "/ui/enroll?t=") {
		t.Fatalf("step-up: %d %s %.300s", r.status, fresh, r.body)
	}
	if fresh == stale {
		t.Fatal("the link signed after the step-up's allow is the one shown before carl had a factor")
	}
	fc, sc := tokenClaims(t, fresh), tokenClaims(t, stale)
	if fc["su"] != true || fc["fs"] == nil || fc["fs"] == "" {
		t.Errorf("link signed after the step-up: claims %v, want marked (su) and bound to carl's factors (fs)", fc)
	}
	// Its own expiry, 10 minutes from the allow; the security link's kept
	// for the way back.
	if got, want := fc["e"], float64(h.clock.Now().Add(10*time.Minute).Unix()); got != want {
		t.Errorf("expiry of the link signed after the step-up: %v, want %v", got, want)
	}
	if fc["le"] != sc["e"] {
		t.Errorf("the security link's expiry in the link after the step-up: %v, want %v", fc["le"], sc["e"])
	}

	// It works past the security link's own expiry (it runs from the
	// allow), adds the TOTP once, and is then spent.
	h.clock.Add(9 * time.Minute)
	_, secret, confirm = h.beginSetup(fresh)
	if d := h.post("/ui/enroll/confirm", with(confirm, "code", totpCode(t, secret, h.clock.Now())), nil); d.status != 200 || !strings.Contains(d.body, "You&#39;re all set") {
		t.Fatalf("confirm with the link after the step-up: %d %.500s", d.status, d.body)
	}
	if got := strings.Join(h.enrollments("carl"), ","); got != "duo/active,totp/active" {
		t.Fatalf("enrollments: %s", got)
	}
	if p := h.get(h.url+fresh, false); !refusedSetup(p) {
		t.Errorf("the link after the step-up, once it added a factor: %d %.300s", p.status, p.body)
	}
	h.clock.Add(time.Minute)
	if p := h.get(h.url+fresh, false); p.status != http.StatusForbidden || !strings.Contains(p.body, "This link has expired") {
		t.Errorf("the link after the step-up, 10 minutes after the allow: %d %.300s", p.status, p.body)
	}
}

var optionsRE = regexp.MustCompile(`data-options="([^"]+)"`)

// beginKey opens a setup link for a security key and begins: the confirm
// form and the credential-creation options the browser would get.
func (h *testHost) beginKey(link string) (confirm url.Values, public string) {
	h.t.Helper()
	sp := h.get(h.url+link, false)
	if sp.status != 200 || !strings.Contains(sp.body, `id="begin"`) {
		h.t.Fatalf("key setup link: %d %.300s", sp.status, sp.body)
	}
	setup := h.post("/ui/enroll/begin", with(sp.form(h.t), "label", "Key"), nil)
	m := optionsRE.FindStringSubmatch(setup.body)
	if m == nil {
		h.t.Fatalf("key begin: %d %.300s", setup.status, setup.body)
	}
	return setup.form(h.t), html.UnescapeString(m[1])
}

// keysOf counts the user's security keys, from the API.
func (h *testHost) keysOf(user string) int {
	h.t.Helper()
	status, out := h.api("GET", "/v1/users/"+user+"/enrollments/webauthn/credentials", appKey, nil)
	if status != http.StatusOK {
		return 0
	}
	return len(out["credentials"].([]any))
}

// stepUpAdd steps up on user's security page with a TOTP code to add
// provider, and returns the setup link the allow opens.
func (h *testHost) stepUpAdd(user, secret, provider string) string {
	h.t.Helper()
	f := h.get(h.link(user, map[string]string{"page": "security", "audience": "client"}), false).form(h.t)
	sf := with(h.post("/ui/security/stepup", with(f, "action", "add:"+provider), nil).form(h.t), "provider", "totp")
	r := h.post("/ui/security/confirm", with(sf, "code", totpCode(h.t, secret, h.clock.Now())), nil)
	h.clock.Add(30 * time.Second) // that code is spent
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/enroll?t=") {
		h.t.Fatalf("step-up to add %s: %d %s %.300s", provider, r.status, r.header.Get("Location"), r.body)
	}
	return r.header.Get("Location")
}

// TestStepUpSetupLinkAddsOneKey: one step-up adds one security key. The
// link it opens, with eight keys answering its one registration at once,
// adds one; then it is spent (its page and a new begin refused), where
// the enroll page would otherwise offer "add another". A link signed
// while the user held one key dies when a second is added.
func TestStepUpSetupLinkAddsOneKey(t *testing.T) {
	emu := startEmulator(t)
	h := startHost(t, start, totpBoth, duoBoth(t, emu), `  webauthn:
    enabled: true
    clients: true
    settings:
      rp_id: localhost
      rp_display_name: ACME Hosting
      origins: http://localhost:8080
`)
	secret := h.enrollTOTP("alice", "client")
	link := h.stepUpAdd("alice", secret, "webauthn")

	confirm, public := h.beginKey(link)
	keys := make([]*webauthntest.Authenticator, 8)
	answers := make([]string, len(keys))
	for i := range keys {
		keys[i] = webauthntest.New("http://localhost:8080")
		att, err := keys[i].Create(public)
		if err != nil {
			t.Fatal(err)
		}
		answers[i] = att
	}
	done := 0
	for _, r := range burst.Run(len(keys), func(i int) page {
		return h.post("/ui/enroll/confirm", with(confirm, "credential", answers[i]), nil)
	}) {
		switch {
		case r.status == 200 && strings.Contains(r.body, "You&#39;re all set"):
			done++
		case r.status == 200 && strings.Contains(r.body, `id="error"`), refusedSetup(r):
		default:
			t.Errorf("burst answer: %d %.300s", r.status, r.body)
		}
	}
	if n := h.keysOf("alice"); done != 1 || n != 1 {
		t.Fatalf("8 keys confirmed at once with one link: %d confirmed, %d keys held; want 1 and 1", done, n)
	}

	// Spent: its page and a new begin are refused, no second key.
	if p := h.get(h.url+link, false); !refusedSetup(p) {
		t.Errorf("the link once it added a key: %d %.300s", p.status, p.body)
	}
	if p := h.post("/ui/enroll/begin", with(confirm, "label", "Second"), nil); !refusedSetup(p) {
		t.Errorf("a new begin with the link once it added a key: %d %.300s", p.status, p.body)
	}
	if n := h.keysOf("alice"); n != 1 {
		t.Errorf("%d keys, want 1", n)
	}

	// A link signed while alice holds one key (to add Duo) is bound to
	// that count: a key added since (by the application) ends it.
	duo := h.stepUpAdd("alice", secret, "duo")
	if p := h.get(h.url+duo, false); p.status != 200 || !strings.Contains(p.body, `id="begin"`) {
		t.Fatalf("the link to add Duo: %d %.300s", p.status, p.body)
	}
	status, out := h.api("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "webauthn", "audience": "client"})
	d, _ := out["display"].(map[string]any)
	pub, _ := d["public"].(string)
	if status != http.StatusCreated || pub == "" {
		t.Fatalf("add a key through the API: %d %v", status, out)
	}
	att, err := webauthntest.New("http://localhost:8080").Create(pub)
	if err != nil {
		t.Fatal(err)
	}
	if status, out := h.api("POST", "/v1/users/alice/enrollments/webauthn/confirm", appKey, map[string]any{"credential": json.RawMessage(att)}); status != http.StatusOK {
		t.Fatalf("confirm a key through the API: %d %v", status, out)
	}
	if p := h.get(h.url+duo, false); !refusedSetup(p) {
		t.Errorf("the link to add Duo after a key was added: %d %.300s", p.status, p.body)
	}
	if got := strings.Join(h.enrollments("alice"), ","); strings.Contains(got, "duo") {
		t.Errorf("enrollments: %s", got)
	}
}

// TestStaleSetupLinkConfirmBurst: the confirmation of a setup begun on a
// login page's setup link before erin had a factor, posted eight times at
// once (the right code) after she set up Duo: every one is refused, no
// factor added.
func TestStaleSetupLinkConfirmBurst(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("erin")
	h := startHost(t, start, totpClients, duoBoth(t, emu), policy("  clients: {require: true}\n"))
	stale := h.get(h.link("erin", map[string]string{"page": "verify", "audience": "client"}), false).href(t, "setup-totp")
	_, secret, confirm := h.beginSetup(stale)
	h.enrollDuo(emu, "erin", "client")
	f := with(confirm, "code", totpCode(t, secret, h.clock.Now()))
	for _, r := range burst.Run(8, func(int) page { return h.post("/ui/enroll/confirm", f, nil) }) {
		if !refusedSetup(r) {
			t.Errorf("burst answer: %d %.300s", r.status, r.body)
		}
	}
	if got := strings.Join(h.enrollments("erin"), ","); got != "duo/active,totp/pending" {
		t.Errorf("enrollments after the burst: %s, want Duo alone active", got)
	}
}
