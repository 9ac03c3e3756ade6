package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// The verify page as a login page: it opens with the login policy's
// decision (allow, verify, enroll, deny), made once per page open.

// policy is a config block after the providers.
func policy(yaml string) string { return "policy:\n" + yaml }

// duoBoth is the Duo block for both audiences.
func duoBoth(t *testing.T, emu *duotest.Server) string {
	t.Helper()
	entry, err := duoconfig.Entry(emu, t.TempDir(), duoconfig.Options{Timeout: 5 * time.Second, Clients: true})
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

const totpBoth = `  totp:
    enabled: true
    staff: true
    clients: true
    settings: {issuer: ACME Hosting}
`

// enrollTOTP enrolls user in TOTP through the API and returns the secret;
// the clock moves on a step, so the confirmation code is spent.
func (h *testHost) enrollTOTP(user, audience string) string {
	h.t.Helper()
	status, out := h.api("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": audience})
	if status != http.StatusCreated {
		h.t.Fatalf("enroll %s: %d %v", user, status, out)
	}
	key, err := otp.NewKeyFromURL(out["display"].(map[string]any)["otpauth_url"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	status, out = h.api("POST", "/v1/users/"+user+"/enrollments/totp/confirm", appKey, map[string]string{"code": totpCode(h.t, key.Secret(), h.clock.Now())})
	if status != http.StatusOK {
		h.t.Fatalf("confirm %s: %d %v", user, status, out)
	}
	h.lastRecovery, _ = out["recovery_codes"].([]any)
	h.clock.Add(30 * time.Second)
	return key.Secret()
}

// setupPasscode is the passcode the tests' Duo setups are confirmed
// with: one no test uses otherwise, valid once, added just before.
const setupPasscode = "8675309"

// enrollDuo enrolls a user Duo already knows (emu.AddUser) for audience
// through the API: begin leaves it pending and asks for a passcode, and
// a passcode Duo accepts for the user activates it.
func (h *testHost) enrollDuo(emu *duotest.Server, user, audience string) {
	h.t.Helper()
	if status, out := h.api("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "duo", "audience": audience}); status != http.StatusCreated || out["status"] != "pending" {
		h.t.Fatalf("begin %s's Duo setup: %d %v", user, status, out)
	}
	emu.AddPasscode(user, setupPasscode)
	if status, out := h.api("POST", "/v1/users/"+user+"/enrollments/duo/confirm", appKey, map[string]string{"code": setupPasscode}); status != http.StatusOK || out["status"] != "active" {
		h.t.Fatalf("confirm %s's Duo setup with a passcode: %d %v", user, status, out)
	}
}

// open gets a page without following redirects, with request headers.
func (h *testHost) open(u string, header map[string]string) page {
	h.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = h.url + u
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return readPage(h.t, res)
}

// challenges returns the user's audited login decisions as "decision/why"
// with the actor.
func (h *testHost) challenges(user string) []string {
	h.t.Helper()
	_, out := h.api("GET", "/v1/audit?user="+url.QueryEscape(user)+"&limit=1000", adminKey, nil)
	var got []string
	for _, e := range out["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] == "challenge" {
			got = append(got, m["outcome"].(string)+"/"+m["reason"].(string)+" by "+m["actor"].(string))
		}
	}
	return got
}

// result checks a result token with the API.
func (h *testHost) result(tok string) map[string]any {
	h.t.Helper()
	status, out := h.api("POST", "/v1/ui-results", appKey, map[string]string{"result": tok})
	if status != http.StatusOK {
		h.t.Fatalf("ui-results: %d %v", status, out)
	}
	return out
}

// resultOf reads the result token off a URL the browser was sent to.
func resultOf(t *testing.T, location string) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || u.Query().Get("twofactor_result") == "" {
		t.Fatalf("no result in %q", location)
	}
	return u.Query().Get("twofactor_result")
}

// href returns the href of the element with this id.
func (p page) href(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<a [^>]*href="([^"]+)"[^>]*id="` + regexp.QuoteMeta(id) + `"|<a [^>]*id="` + regexp.QuoteMeta(id) + `"[^>]*href="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no link #%s on the page: %s", id, p.body)
	}
	return strings.ReplaceAll(m[1]+m[2], "&amp;", "&")
}

// strict checks a page has the UI's headers and no inline script or style.
func strict(t *testing.T, what string, p page) {
	t.Helper()
	if p.header.Get("Content-Security-Policy") != "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" ||
		p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: headers %v", what, p.header)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1) {
		if !strings.Contains(tag, ` src="/ui/static/`) {
			t.Errorf("%s: an inline script: %s", what, tag)
		}
	}
	if strings.Contains(p.body, "style=") || strings.Contains(p.body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
		t.Errorf("%s: an inline script or style", what)
	}
}

// TestLoginAllow: a user the policy lets in without a second factor goes
// straight back to the application with a signed allow saying why; without
// a return URL, to a result page that says so.
func TestLoginAllow(t *testing.T) {
	h := startHost(t, start, totpClients)
	// A login page link names only the user and audience.
	p := h.get(h.link("bob", map[string]string{"page": "verify", "audience": "client", "return_url": "https://panel.example/login?next=%2F"}), false)
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "https://panel.example/login?next=%2F&twofactor_result=") {
		t.Fatalf("not required: %d %q", p.status, loc)
	}
	res := h.result(resultOf(t, loc))
	if res["outcome"] != "allow" || res["method"] != "not_required" || res["user"] != "bob" || res["provider"] != "" || res["link_id"] == "" {
		t.Errorf("result: %v", res)
	}
	p = h.get(h.link("bob", map[string]string{"page": "verify", "audience": "client"}), false)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/verify/done?t=") {
		t.Fatalf("not required, no return URL: %d %v", p.status, p.header)
	}
	if d := h.get(h.url+p.header.Get("Location"), false); !strings.Contains(d.body, "You&#39;re signed in") || !strings.Contains(d.body, "isn&#39;t required") {
		t.Errorf("result page: %s", d.body)
	}
	if got, want := h.challenges("bob"), []string{"allow/not_required by ui:panel", "allow/not_required by ui:panel"}; !slices.Equal(got, want) {
		t.Errorf("audited decisions %v, want %v", got, want)
	}
	// A verify link still checks a provider it names.
	if status, _ := h.api("POST", "/v1/users/bob/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "sms"}); status != http.StatusNotFound {
		t.Errorf("verify link for an unknown provider: %d", status)
	}
	// An enroll link needs its provider.
	if status, _ := h.api("POST", "/v1/users/bob/ui-links", appKey, map[string]string{"page": "enroll", "audience": "client"}); status != http.StatusBadRequest {
		t.Errorf("enroll link without a provider: %d", status)
	}
}

// TestLoginGraceLogins: a user who must enroll but has grace logins left is
// let in, told how many remain and offered to set up a factor now; once
// they are spent, the page asks to set one up first. Pages after the
// decision (the result page again, the setup pages) decide nothing, so they
// spend no grace login.
func TestLoginGraceLogins(t *testing.T) {
	h := startHost(t, start, totpClients, policy("  clients: {require: true, grace_logins: 2}\n"))
	ret := "https://panel.example/home"
	// A link checker's HEAD and a browser's prefetch decide nothing.
	link := h.link("gina", map[string]string{"page": "verify", "audience": "client", "return_url": ret})
	if res, err := http.Head(link); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HEAD: %v %v", res, err)
	}
	if p := h.open(link, map[string]string{"Sec-Purpose": "prefetch;prerender"}); p.status != http.StatusServiceUnavailable {
		t.Errorf("prefetch: %d", p.status)
	}
	if got := h.challenges("gina"); len(got) != 0 {
		t.Errorf("decided for a HEAD or a prefetch: %v", got)
	}
	p := h.get(h.link("gina", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), false)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/verify/done?t=") {
		t.Fatalf("grace login: %d %v", p.status, p.header)
	}
	done := h.get(h.url+p.header.Get("Location"), false)
	strict(t, "grace login", done)
	if !strings.Contains(done.body, "sign in once more without it") || !strings.Contains(done.body, "Set it up now") {
		t.Errorf("grace result page: %s", done.body)
	}
	cont := done.href(t, "continue")
	if res := h.result(resultOf(t, cont)); res["outcome"] != "allow" || res["method"] != "grace_login" {
		t.Errorf("result: %v", res)
	}
	// Reloading the result page and walking into the setup decide nothing.
	for range 3 {
		h.get(h.url+p.header.Get("Location"), false)
	}
	setup := h.get(h.url+done.href(t, "setup-totp"), false)
	if setup.status != 200 || !strings.Contains(setup.body, `id="begin"`) || strings.Contains(setup.body, "Not now") {
		t.Errorf("setup page from the grace login: %d %s", setup.status, setup.body)
	}
	// Starting the setup and typing a wrong code, twice: shown again each
	// time, from the same link, deciding nothing.
	sf := setup.form(t)
	if r := h.post("/ui/enroll/begin", sf, nil); r.status != 200 || !strings.Contains(r.body, `id="qr"`) {
		t.Fatalf("begin: %d %s", r.status, r.body)
	}
	for range 2 {
		sf.Set("code", "000000")
		if r := h.post("/ui/enroll/confirm", sf, nil); !strings.Contains(r.body, "didn&#39;t match") {
			t.Errorf("wrong confirmation code: %d %s", r.status, r.body)
		}
	}
	if got := h.challenges("gina"); len(got) != 1 {
		t.Errorf("audited decisions %v, want the one of the page open", got)
	}

	// The second and last grace login, then enroll first.
	p = h.get(h.link("gina", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), false)
	if d := h.get(h.url+p.header.Get("Location"), false); !strings.Contains(d.body, "This was your last sign-in without it") {
		t.Errorf("last grace login: %s", d.body)
	}
	p = h.get(h.link("gina", map[string]string{"page": "verify", "audience": "client", "return_url": ret}), false)
	if p.status != 200 || !strings.Contains(p.body, "needs two-step verification before you can sign in") || !strings.Contains(p.body, `id="setup-totp"`) {
		t.Fatalf("after the grace logins: %d %s", p.status, p.body)
	}
	strict(t, "enroll first", p)
	want := []string{"allow/grace_login by ui:panel", "allow/grace_login by ui:panel", "enroll/enrollment_required by ui:panel"}
	if got := h.challenges("gina"); !slices.Equal(got, want) {
		t.Errorf("audited decisions %v, want %v", got, want)
	}
}

// TestLoginEnrollFirst: a user who must enroll is offered the audience's
// providers; the setup link comes from the login link (same user, audience
// and return URL) and, once enrolled, leads back to the login page, which
// now asks for the new factor.
func TestLoginEnrollFirst(t *testing.T) {
	emu := startEmulator(t)
	h := startHost(t, start, totpClients, duoBoth(t, emu), policy("  clients: {require: true}\n"))
	ret := "/account/after-login"
	p := h.get(h.link("erin", map[string]string{"page": "verify", "audience": "client", "provider": "totp", "return_url": ret}), false)
	if p.status != 200 || !strings.Contains(p.body, "Set up two-step verification") || !strings.Contains(p.body, `id="setup-duo"`) {
		t.Fatalf("enroll first: %d %s", p.status, p.body)
	}
	if strings.Contains(p.body, `name="t"`) || strings.Contains(p.body, ret) {
		t.Error("the choice page has a form or a way around the enrollment")
	}
	sp := h.get(h.url+p.href(t, "setup-totp"), false)
	if sp.status != 200 || !strings.Contains(sp.body, `id="begin"`) || strings.Contains(sp.body, "Not now") {
		t.Fatalf("setup: %d %s", sp.status, sp.body)
	}
	// Another provider is one click away, without deciding again.
	if back := h.get(h.url+sp.href(t, "choose"), false); !strings.Contains(back.body, `id="setup-duo"`) {
		t.Errorf("choose another way: %s", back.body)
	}
	f := sp.form(t)
	setup := h.post("/ui/enroll/begin", f, nil)
	secret := strings.ReplaceAll(secretRE.FindStringSubmatch(setup.body)[1], " ", "")
	f.Set("code", totpCode(t, secret, h.clock.Now()))
	codes := h.post("/ui/enroll/confirm", f, nil)
	next := codes.href(t, "continue")
	if !strings.Contains(codes.body, `id="recovery-codes"`) || !strings.HasPrefix(next, "/ui/verify?t=") {
		t.Fatalf("after enrolling: continue to %q: %s", next, codes.body)
	}
	// Back on the login page: now a code.
	h.clock.Add(30 * time.Second)
	v := h.get(h.url+next, false)
	if v.status != 200 || !strings.Contains(v.body, `id="submit-code"`) {
		t.Fatalf("login page after enrolling: %d %s", v.status, v.body)
	}
	vf := v.form(t)
	vf.Set("code", totpCode(t, secret, h.clock.Now()))
	r := h.post("/ui/verify/code", vf, nil)
	d := h.get(h.url+r.header.Get("Location"), false)
	res := h.result(resultOf(t, h.url+d.href(t, "continue")))
	if res["outcome"] != "allow" || res["method"] != "totp" || res["user"] != "erin" {
		t.Errorf("result: %v", res)
	}
	want := []string{"enroll/enrollment_required by ui:panel", "verify/enrolled by ui:panel"}
	if got := h.challenges("erin"); !slices.Equal(got, want) {
		t.Errorf("audited decisions %v, want %v", got, want)
	}
}

// TestLoginProviders: the page shows the link's provider if the decision
// lists it, else the first; it offers the others listed and nothing else.
// A provider the user has not enrolled in, or the audience does not allow,
// can be neither shown nor posted. Wrong codes and switches decide nothing
// again.
func TestLoginProviders(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("carol")
	h := startHost(t, start, totpBoth, duoBoth(t, emu), policy("  staff: {allowed_providers: [totp]}\n"))
	secret := h.enrollTOTP("carol", "client")
	h.enrollDuo(emu, "carol", "client")
	h.enrollTOTP("dan", "client")

	// No provider named: the first listed (duo), with TOTP offered.
	p := h.get(h.link("carol", map[string]string{"page": "verify", "audience": "client"}), false)
	if p.status != 200 || !strings.Contains(p.body, `id="push"`) || !strings.Contains(p.body, `id="use-totp"`) || strings.Contains(p.body, `id="use-duo"`) {
		t.Fatalf("carol, no provider: %d %s", p.status, p.body)
	}
	strict(t, "verify", p)
	// TOTP named: TOTP, with Duo offered.
	p = h.get(h.link("carol", map[string]string{"page": "verify", "audience": "client", "provider": "totp"}), false)
	if !strings.Contains(p.body, `id="submit-code"`) || strings.Contains(p.body, `id="push"`) || !strings.Contains(p.body, `id="use-duo"`) {
		t.Fatalf("carol, totp: %s", p.body)
	}
	f := p.form(t)
	// Switch to Duo and back; a provider not listed is refused.
	if d := h.get(h.url+p.href(t, "use-duo"), false); d.status != 200 || !strings.Contains(d.body, `id="push"`) || !strings.Contains(d.body, `value="duo"`) {
		t.Errorf("switch to duo: %d %s", d.status, d.body)
	}
	for _, bad := range []string{"sms", "recovery", "hotp"} {
		if r := h.get(h.url+"/ui/verify?t="+f.Get("t")+"&provider="+bad, false); r.status != http.StatusForbidden {
			t.Errorf("switch to %s: %d", bad, r.status)
		}
		g := url.Values{"t": {f.Get("t")}, "csrf": {f.Get("csrf")}, "provider": {bad}, "code": {"123456"}}
		if r := h.post("/ui/verify/code", g, nil); r.status != http.StatusForbidden {
			t.Errorf("code for %s: %d %s", bad, r.status, r.body)
		}
	}
	// A push needs a provider that pushes.
	if r := h.post("/ui/verify/push", url.Values{"t": {f.Get("t")}, "csrf": {f.Get("csrf")}, "provider": {"totp"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("push with totp: %d", r.status)
	}
	// Wrong codes show the page again; the right one passes.
	f.Set("provider", "totp")
	for range 2 {
		f.Set("code", "000000")
		if r := h.post("/ui/verify/code", f, nil); r.status != 200 || !strings.Contains(r.body, `role="alert"`) || !strings.Contains(r.body, `id="use-duo"`) {
			t.Fatalf("wrong code: %d %s", r.status, r.body)
		}
	}
	f.Set("code", totpCode(t, secret, h.clock.Now()))
	if r := h.post("/ui/verify/code", f, nil); r.status != http.StatusSeeOther {
		t.Errorf("right code: %d %s", r.status, r.body)
	}
	if got := h.challenges("carol"); len(got) != 2 {
		t.Errorf("audited decisions %v, want one per page open (2)", got)
	}

	// dan has TOTP only: Duo, enabled for clients, is not his to choose,
	// even when the link names it.
	p = h.get(h.link("dan", map[string]string{"page": "verify", "audience": "client", "provider": "duo"}), false)
	if p.status != 200 || !strings.Contains(p.body, `id="submit-code"`) || strings.Contains(p.body, `id="push"`) || strings.Contains(p.body, "Other ways") {
		t.Fatalf("dan: %d %s", p.status, p.body)
	}
	f = p.form(t)
	if r := h.get(h.url+"/ui/verify?t="+f.Get("t")+"&provider=duo", false); r.status != http.StatusForbidden {
		t.Errorf("dan switching to duo: %d", r.status)
	}
	if r := h.post("/ui/verify/push", url.Values{"t": {f.Get("t")}, "csrf": {f.Get("csrf")}, "provider": {"duo"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("dan pushing duo: %d", r.status)
	}
	// Staff may use TOTP only: carol's Duo is not offered to her as staff.
	p = h.get(h.link("carol", map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false)
	if p.status != 200 || strings.Contains(p.body, `id="push"`) || strings.Contains(p.body, `id="use-duo"`) {
		t.Errorf("carol as staff: %d %s", p.status, p.body)
	}
	// A form needs the decision: a link token posted directly is refused.
	link := h.link("carol", map[string]string{"page": "verify", "audience": "client"})
	lt, _ := url.Parse(link)
	if r := h.post("/ui/verify/code", url.Values{"t": {lt.Query().Get("t")}, "csrf": {f.Get("csrf")}, "code": {"123456"}}, nil); r.status != http.StatusForbidden || !strings.Contains(r.body, "not valid") {
		t.Errorf("a link token posted: %d %s", r.status, r.body)
	}
}

// TestLoginLockedOut: a locked-out user is told when to try again and
// offered a recovery code, which lets them in and ends the lockout.
func TestLoginLockedOut(t *testing.T) {
	h := startHost(t, start, totpClients)
	secret := h.enrollTOTP("lucy", "client")
	codes := h.lastRecovery
	p := h.get(h.link("lucy", map[string]string{"page": "verify", "audience": "client", "return_url": "/back"}), false)
	f := p.form(t)
	// Wrong codes until the lockout starts: the page then says so.
	var r page
	for i := range 6 {
		f.Set("code", "000000")
		r = h.post("/ui/verify/code", f, nil)
		if strings.Contains(r.body, "Too many attempts") {
			break
		}
		if i == 5 {
			t.Fatalf("no lockout page after 6 wrong codes: %s", r.body)
		}
	}
	if !strings.Contains(r.body, "Try again in 30 seconds") || !strings.Contains(r.body, `id="submit-recovery"`) {
		t.Errorf("lockout after wrong codes: %s", r.body)
	}
	// A new login page: deny, with the time left and the recovery form.
	h.clock.Add(10 * time.Second)
	p = h.get(h.link("lucy", map[string]string{"page": "verify", "audience": "client", "return_url": "/back"}), false)
	if p.status != 200 || !strings.Contains(p.body, "Too many attempts") || !strings.Contains(p.body, "Try again in 20 seconds") ||
		!strings.Contains(p.body, `id="submit-recovery"`) || strings.Contains(p.body, `id="submit-code"`) || !strings.Contains(p.body, `id="retry"`) {
		t.Fatalf("locked out: %d %s", p.status, p.body)
	}
	strict(t, "locked out", p)
	lf := p.form(t)
	// A code cannot be posted with the lockout's form.
	lf.Set("code", totpCode(t, secret, h.clock.Now()))
	if r := h.post("/ui/verify/code", lf, nil); r.status != http.StatusForbidden {
		t.Errorf("a code posted while locked out: %d", r.status)
	}
	lf.Set("code", "AAAA-BBBB-CCCC-DDDD")
	if r := h.post("/ui/verify/recovery", lf, nil); r.status != 200 || !strings.Contains(r.body, "isn&#39;t valid") || !strings.Contains(r.body, "Too many attempts") {
		t.Errorf("wrong recovery code: %d %s", r.status, r.body)
	}
	lf.Set("code", codes[0].(string))
	r = h.post("/ui/verify/recovery", lf, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d %s", r.status, r.body)
	}
	d := h.get(h.url+r.header.Get("Location"), false)
	if res := h.result(resultOf(t, h.url+d.href(t, "continue"))); res["outcome"] != "allow" || res["method"] != "recovery" {
		t.Errorf("result: %v", res)
	}
	// The lockout is over.
	if p := h.get(h.link("lucy", map[string]string{"page": "verify", "audience": "client"}), false); !strings.Contains(p.body, `id="submit-code"`) {
		t.Errorf("after the recovery code: %s", p.body)
	}
	want := []string{"verify/enrolled by ui:panel", "deny/locked_out by ui:panel", "verify/enrolled by ui:panel"}
	if got := h.challenges("lucy"); !slices.Equal(got, want) {
		t.Errorf("audited decisions %v, want %v", got, want)
	}
}

var deviceCookieRE = regexp.MustCompile(`^twofactor_device_[A-Za-z0-9_-]{16}$`)
