package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
)

// rememberedLogin logs user in through the login page with "remember this
// device" ticked and returns the device cookie.
func (h *testHost) rememberedLogin(user, secret string) *http.Cookie {
	h.t.Helper()
	p := h.get(h.link(user, map[string]string{"page": "verify", "audience": "client"}), false)
	f := p.form(h.t)
	f.Set("code", totpCode(h.t, secret, h.clock.Now()))
	f.Set("remember", "1")
	r := h.post("/ui/verify/code", f, map[string]string{"User-Agent": "Browser " + h.clock.Now().Format("15:04:05")})
	if r.status != http.StatusSeeOther {
		h.t.Fatalf("remembered login: %d %s", r.status, r.body)
	}
	h.clock.Add(30 * time.Second) // that code is spent
	return deviceCookie(h.t, r)
}

// devices returns the ids of the user's remembered devices, from the API.
func (h *testHost) devices(user string) []string {
	h.t.Helper()
	status, out := h.api("GET", "/v1/users/"+user+"/devices", appKey, nil)
	if status != http.StatusOK {
		h.t.Fatalf("devices: %d %v", status, out)
	}
	var ids []string
	for _, d := range out["devices"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

// enrollments returns the user's enrollments as provider/status.
func (h *testHost) enrollments(user string) []string {
	h.t.Helper()
	_, out := h.api("GET", "/v1/users/"+user+"/enrollments", appKey, nil)
	var got []string
	for _, e := range out["enrollments"].([]any) {
		m := e.(map[string]any)
		got = append(got, m["provider"].(string)+"/"+m["status"].(string))
	}
	return got
}

func (h *testHost) codesLeft(user string) float64 {
	h.t.Helper()
	_, out := h.api("GET", "/v1/users/"+user+"/recovery-codes", appKey, nil)
	return out["remaining"].(float64)
}

var codeRE = regexp.MustCompile(`<li><code>([A-Z0-9-]{19})</code></li>`)

// TestSecurityPage: the user's security page lists factors with their
// dates, offers the others, and the backup codes and remembered devices.
// Removing a factor and new backup codes need a step-up through Verify (a
// wrong code is refused and counts); devices are forgotten one by one
// (this browser's cookie too) or all at once. Bad input changes nothing.
func TestSecurityPage(t *testing.T) {
	emu := startEmulator(t)
	h := startHost(t, start, totpBoth, duoBoth(t, emu), policy("  clients: {remember_device: {enabled: true, days: 30}}\n"))
	secret := h.enrollTOTP("alice", "client")
	oldCodes := h.lastRecovery
	other := h.rememberedLogin("alice", secret)
	mine := h.rememberedLogin("alice", secret)
	cookie := map[string]string{"Cookie": mine.Name + "=" + mine.Value}

	sec := h.link("alice", map[string]string{"page": "security", "audience": "client", "return_url": "/account"})
	p := h.open(sec, cookie)
	strict(t, "security page", p)
	for _, want := range []string{`id="factor-totp"`, "Added " + start.Format("2 Jan 2006"), `id="add-duo"`, "You have 10 unused backup codes",
		`id="regenerate"`, `id="this-device"`, `id="forget-all"`, `href="/account"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("security page lacks %s: %s", want, p.body)
		}
	}
	if strings.Contains(p.body, `id="add-totp"`) {
		t.Error("the page offers to add a factor the user has")
	}
	f := p.form(t)

	// Bad input changes nothing.
	for _, tt := range []struct {
		name, path string
		form       url.Values
		header     map[string]string
		status     int
		want       string
	}{
		{"remove a factor the user lacks", "/ui/security/stepup", with(f, "action", "remove:duo"), nil, 200, "can&#39;t be made"},
		{"unknown action", "/ui/security/stepup", with(f, "action", "drop-table"), nil, 200, "can&#39;t be made"},
		{"unknown device", "/ui/security/forget", with(f, "device", "nope"), nil, 200, "not in your list"},
		{"no device", "/ui/security/forget", with(f, "device", ""), nil, 200, "Choose a device"},
		{"no CSRF value", "/ui/security/forget-all", with(f, "csrf", ""), nil, 403, "could not be checked"},
		{"another page's CSRF value", "/ui/security/forget-all", with(f, "csrf", otherFirst(f.Get("csrf"))), nil, 403, "could not be checked"},
		{"cross-site", "/ui/security/forget-all", f, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "another site"},
		{"a verify link's token", "/ui/security/forget-all", tokenOf(t, h.link("alice", map[string]string{"page": "verify", "audience": "client"}), h), nil, 403, ""},
		{"a step-up token on forget-all", "/ui/security/forget-all", h.post("/ui/security/stepup", with(f, "action", "regenerate"), nil).form(t), nil, 403, ""},
	} {
		r := h.post(tt.path, tt.form, tt.header)
		if r.status != tt.status || !strings.Contains(r.body, tt.want) {
			t.Errorf("%s: %d %.300s", tt.name, r.status, r.body)
		}
	}
	if got := h.devices("alice"); len(got) != 2 || h.codesLeft("alice") != 10 || strings.Join(h.enrollments("alice"), ",") != "totp/active" {
		t.Fatalf("bad input changed something: devices %v, codes %v, enrollments %v", got, h.codesLeft("alice"), h.enrollments("alice"))
	}

	// Step-up for new backup codes: a wrong code is refused, and counted.
	s := h.post("/ui/security/stepup", with(f, "action", "regenerate"), nil)
	if s.status != 200 || !strings.Contains(s.body, `id="stepup-form"`) || !strings.Contains(s.body, "Your current backup codes will stop working") {
		t.Fatalf("step-up page: %d %s", s.status, s.body)
	}
	strict(t, "step-up page", s)
	sf := s.form(t)
	if r := h.post("/ui/security/confirm", with(with(sf, "provider", "totp"), "code", "000000"), nil); !strings.Contains(r.body, "isn&#39;t right") || codeRE.MatchString(r.body) {
		t.Errorf("wrong step-up code: %d %s", r.status, r.body)
	}
	if r := h.post("/ui/security/confirm", with(with(sf, "provider", "duo"), "code", "123456"), nil); !strings.Contains(r.body, "Choose one of the sign-in methods") {
		t.Errorf("step-up with a factor the user lacks: %d %s", r.status, r.body)
	}
	if n := h.audited("alice", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want the wrong step-up code's 1", n)
	}
	r := h.post("/ui/security/confirm", with(with(sf, "provider", "totp"), "code", totpCode(t, secret, h.clock.Now())), nil)
	codes := codeRE.FindAllStringSubmatch(r.body, -1)
	if r.status != 200 || len(codes) != 10 || !strings.Contains(r.body, `id="copy-codes"`) || !strings.Contains(r.body, `id="download-codes"`) ||
		!strings.Contains(r.body, `id="print-codes"`) || !names(r.body, "codes.js") {
		t.Fatalf("new codes page: %d %s", r.status, r.body)
	}
	strict(t, "new codes page", r)
	h.clock.Add(30 * time.Second)
	for _, c := range []string{oldCodes[0].(string), codes[0][1]} {
		_, v := h.api("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "recovery", "audience": "client", "code": c})
		if want := map[bool]string{true: "deny", false: "allow"}[c == oldCodes[0].(string)]; v["outcome"] != want {
			t.Errorf("recovery code %s after regenerating: %v, want %s", c, v, want)
		}
	}

	// Forget this device: its cookie goes too; then all.
	p = h.open(sec, cookie)
	id := regexp.MustCompile(`name="device" value="([^"]+)">\s*<button[^>]*>Forget<span class="visually-hidden"> this device`).FindStringSubmatch(p.body)
	if id == nil {
		t.Fatalf("no forget button for this device: %s", p.body)
	}
	r = h.post("/ui/security/forget", with(f, "device", id[1]), cookie)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "n=forgot") || deviceCookie(t, r).MaxAge >= 0 {
		t.Errorf("forget this device: %d %v", r.status, r.header)
	}
	if got := h.devices("alice"); len(got) != 1 || got[0] == id[1] {
		t.Errorf("devices after forgetting this one: %v", got)
	}
	if p := h.open(h.url+r.header.Get("Location"), nil); !strings.Contains(p.body, "That device will have to verify again") || strings.Contains(p.body, `id="this-device"`) {
		t.Errorf("after forgetting: %s", p.body)
	}
	_ = other
	if r := h.post("/ui/security/forget-all", f, nil); r.status != http.StatusSeeOther || len(h.devices("alice")) != 0 {
		t.Errorf("forget all: %d, devices %v", r.status, h.devices("alice"))
	}

	// Remove the factor, after a step-up with a backup code.
	s = h.post("/ui/security/stepup", with(f, "action", "remove:totp"), nil)
	if !strings.Contains(s.body, "To remove authenticator app") || !strings.Contains(s.body, `id="submit-recovery"`) {
		t.Fatalf("remove step-up page: %s", s.body)
	}
	r = h.post("/ui/security/confirm", with(with(s.form(t), "provider", "recovery"), "code", codes[1][1]), nil)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "n=removed") {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if got := h.enrollments("alice"); len(got) != 0 {
		t.Errorf("enrollments after removing: %v", got)
	}
	p = h.open(h.url+r.header.Get("Location"), nil)
	if !strings.Contains(p.body, "The sign-in method was removed") || !strings.Contains(p.body, `id="no-factors"`) || !strings.Contains(p.body, `id="add-totp"`) ||
		strings.Contains(p.body, `id="regenerate"`) {
		t.Errorf("after removing: %s", p.body)
	}
}

// TestSecurityStepUpBurst: a burst of step-ups is held by the attempt
// gate as logins are: wrong codes at once get no more than the free
// attempts evaluated, and one right code sent many times at once gives new
// codes once (a code is accepted once).
func TestSecurityStepUpBurst(t *testing.T) {
	h := startHost(t, start, totpClients)
	secret := h.enrollTOTP("bob", "client")
	f := h.get(h.link("bob", map[string]string{"page": "security", "audience": "client"}), false).form(t)
	sf := h.post("/ui/security/stepup", with(f, "action", "remove:totp"), nil).form(t)
	sf.Set("provider", "totp")

	confirmBurst := func(n int, code string) []page {
		return burst.Run(n, func(int) page { return h.post("/ui/security/confirm", with(sf, "code", code), nil) })
	}
	wrong, locked := 0, 0
	for _, p := range confirmBurst(16, "000000") {
		switch {
		case strings.Contains(p.body, "isn&#39;t right"):
			wrong++
		case strings.Contains(p.body, "Too many wrong attempts"):
			locked++
		default:
			t.Errorf("burst answer: %d %.300s", p.status, p.body)
		}
	}
	if wrong != 5 || locked != 11 {
		t.Errorf("16 wrong codes at once: %d evaluated, %d refused by the lockout; want 5 and 11", wrong, locked)
	}
	if got := h.enrollments("bob"); strings.Join(got, ",") != "totp/active" {
		t.Fatalf("enrollments after wrong codes: %v", got)
	}

	// After the backoff, one right code sent 8 times at once is accepted
	// once and removes the factor once; the others are refused (replayed)
	// or, arriving after the removal, told it is done.
	h.clock.Add(time.Hour)
	f = h.get(h.link("bob", map[string]string{"page": "security", "audience": "client"}), false).form(t)
	sf = h.post("/ui/security/stepup", with(f, "action", "remove:totp"), nil).form(t)
	sf.Set("provider", "totp")
	for _, p := range confirmBurst(8, totpCode(t, secret, h.clock.Now())) {
		if p.status != http.StatusSeeOther && !strings.Contains(p.body, `id="error"`) {
			t.Errorf("burst answer: %d %.300s", p.status, p.body)
		}
	}
	// A request that found the factor gone may be the one that drops the
	// recovery codes, audited as the recovery provider's: not a removal.
	if a, r := h.audited("bob", "verify", "allow"), h.auditedOf("bob", "enrollment.reset", "deleted", "totp"); a != 1 || r != 1 {
		t.Errorf("one code sent 8 times at once: %d allows and %d removals audited, want 1 and 1", a, r)
	}
	if got := h.enrollments("bob"); len(got) != 0 {
		t.Errorf("enrollments after the burst: %v", got)
	}
}

// with returns a copy of form with key set to value.
func with(form url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = append([]string(nil), v...)
	}
	out.Set(key, value)
	return out
}

// tokenOf is a form with the token of a link and a CSRF value read from
// the page it opens.
func tokenOf(t *testing.T, link string, h *testHost) url.Values {
	t.Helper()
	return h.get(link, true).form(t)
}

// audited counts the user's audit entries of an event and outcome.
func (h *testHost) audited(user, event, outcome string) int {
	h.t.Helper()
	return h.auditedOf(user, event, outcome, "")
}

// auditedOf is audited of one provider's entries ("": any).
func (h *testHost) auditedOf(user, event, outcome, provider string) int {
	h.t.Helper()
	_, out := h.api("GET", "/v1/audit?user="+url.QueryEscape(user)+"&limit=1000", adminKey, nil)
	n := 0
	for _, e := range out["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] == event && m["outcome"] == outcome && (provider == "" || m["provider"] == provider) {
			n++
		}
	}
	return n
}

// otherFirst changes a value's first character.
func otherFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
