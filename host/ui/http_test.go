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
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

var start = time.Unix(1_800_000_000, 0).UTC()

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretRE = regexp.MustCompile(`id="secret">([A-Z2-7 ]+)<`)

// TestUILinksAPI: who may get which link, and what a link request must say.
func TestUILinksAPI(t *testing.T) {
	h := startHost(t, start, totpClients)
	for _, tt := range []struct {
		name, path, key string
		body            map[string]string
		status          int
		code            string
	}{
		{"enroll", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "enroll", "audience": "client", "provider": "totp"}, 201, ""},
		{"verify with return", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "totp", "return_url": "https://panel.example/done"}, 201, ""},
		{"no key", "/v1/users/alice/ui-links", "", map[string]string{"page": "enroll", "audience": "client", "provider": "totp"}, 401, "unauthorized"},
		{"bad page", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "settings", "audience": "client", "provider": "totp"}, 400, "invalid_request"},
		{"admin page from a user route", "/v1/users/alice/ui-links", adminKey, map[string]string{"page": "admin"}, 400, "invalid_request"},
		{"unknown provider", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "sms"}, 404, "unknown_provider"},
		{"audience not allowed", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "staff", "provider": "totp"}, 403, "audience_not_allowed"},
		{"script return url", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "totp", "return_url": "javascript:alert(1)"}, 400, "invalid_request"},
		{"protocol-relative return url", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "totp", "return_url": "//evil.example/"}, 400, "invalid_request"},
		{"unknown field", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "user": "bob"}, 400, "invalid_json"},
		{"security", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "security", "audience": "client", "return_url": "/account"}, 201, ""},
		{"security with a provider", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "security", "audience": "client", "provider": "totp"}, 400, "invalid_request"},
		{"security without an audience", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "security"}, 400, "invalid_request"},
		{"admin link", "/v1/ui-links", adminKey, map[string]string{"page": "admin"}, 201, ""},
		{"admin link with an app key", "/v1/ui-links", appKey, map[string]string{"page": "admin"}, 403, "forbidden"},
		{"admin route for a user page", "/v1/ui-links", adminKey, map[string]string{"page": "enroll"}, 400, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out := h.api("POST", tt.path, tt.key, tt.body)
			code := ""
			if e, ok := out["error"].(map[string]any); ok {
				code, _ = e["code"].(string)
			}
			if status != tt.status || code != tt.code {
				t.Errorf("%d %v, want %d %q", status, out, tt.status, tt.code)
			}
		})
	}
	_, out := h.api("POST", "/v1/users/alice/ui-links", appKey, map[string]string{"page": "verify", "audience": "client", "provider": "totp"})
	exp, err := time.Parse(time.RFC3339, out["expires_at"].(string))
	if err != nil || !exp.Equal(start.Add(10*time.Minute)) {
		t.Errorf("expires_at = %v, want the host clock + 10 min", out["expires_at"])
	}
}

// TestUIWithoutBrowser walks enroll and verify over plain HTTP and checks
// every refusal: forged, expired and cross-page tokens, missing or wrong
// CSRF values, cross-site posts, and the security headers.
func TestUIWithoutBrowser(t *testing.T) {
	h := startHost(t, start, totpClients)
	enroll := h.link("alice", map[string]string{"page": "enroll", "audience": "client", "provider": "totp", "return_url": "/account"})

	p := h.get(enroll, false)
	if p.status != 200 || !strings.Contains(p.body, "Set up two-step verification") {
		t.Fatalf("enroll page: %d %s", p.status, p.body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(p.body, "<script") || strings.Contains(p.body, "style=") {
		t.Error("an inline script or style on the enroll page")
	}
	form := p.form(t)

	// CSRF: missing, wrong, from another link, from another site.
	for name, f := range map[string]url.Values{
		"no csrf":    {"t": {form.Get("t")}},
		"wrong csrf": {"t": {form.Get("t")}, "csrf": {"AAAA"}},
	} {
		if r := h.post("/ui/enroll/begin", f, nil); r.status != http.StatusForbidden || !strings.Contains(r.body, "could not be checked") {
			t.Errorf("%s: %d", name, r.status)
		}
	}
	other := h.get(h.link("bob", map[string]string{"page": "enroll", "audience": "client", "provider": "totp"}), false).form(t)
	if r := h.post("/ui/enroll/begin", url.Values{"t": {form.Get("t")}, "csrf": {other.Get("csrf")}}, nil); r.status != http.StatusForbidden {
		t.Errorf("another link's CSRF value: %d", r.status)
	}
	if r := h.post("/ui/enroll/begin", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.status != http.StatusForbidden {
		t.Errorf("cross-site post: %d", r.status)
	}
	// An enroll link does not open the verify page.
	if r := h.get(h.url+"/ui/verify?t="+form.Get("t"), false); r.status != http.StatusForbidden || !strings.Contains(r.body, "not valid") {
		t.Errorf("enroll token on the verify page: %d", r.status)
	}
	// Forged and missing tokens.
	tok := form.Get("t")
	forged := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tok, "AA")]
	for name, u := range map[string]string{"forged": h.url + "/ui/enroll?t=" + forged, "missing": h.url + "/ui/enroll"} {
		if r := h.get(u, false); r.status != http.StatusForbidden {
			t.Errorf("%s token: %d", name, r.status)
		}
	}

	// Begin: the QR code inline, the secret in groups, never cached.
	p = h.post("/ui/enroll/begin", form, nil)
	if p.status != 200 || !strings.Contains(p.body, `src="data:image/png;base64,iVBORw0KGgo`) || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("begin: %d %v %s", p.status, p.header, p.body)
	}
	m := secretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on the page: %s", p.body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	for _, attr := range []string{`autocomplete="one-time-code"`, `inputmode="numeric"`, `<label for="code">`} {
		if !strings.Contains(p.body, attr) {
			t.Errorf("code field lacks %s", attr)
		}
	}
	if r := h.post("/ui/enroll/confirm", url.Values{"t": {form.Get("t")}, "csrf": {form.Get("csrf")}, "code": {"000000"}}, nil); !strings.Contains(r.body, "didn&#39;t match") {
		t.Errorf("wrong confirmation code: %d %s", r.status, r.body)
	}
	form.Set("code", totpCode(t, secret, h.clock.Now()))
	p = h.post("/ui/enroll/confirm", form, nil)
	if n := strings.Count(p.body, "<li><code>"); p.status != 200 || n != 10 || !strings.Contains(p.body, `href="/account"`) {
		t.Fatalf("confirm: %d, %d codes: %s", p.status, n, p.body)
	}
	recovery := regexp.MustCompile(`<li><code>([0-9A-Z-]+)</code>`).FindStringSubmatch(p.body)[1]
	// The link still works, but now says the factor is on; no new codes.
	if r := h.get(enroll, false); !strings.Contains(r.body, "Already set up") || strings.Contains(r.body, "<li><code>") {
		t.Errorf("enroll link after enrolling: %s", r.body)
	}

	// Verify: a wrong code, then the right one of the next step.
	verify := h.link("alice", map[string]string{"page": "verify", "audience": "client", "provider": "totp", "return_url": "https://panel.example/login?next=%2F"})
	vf := h.get(verify, false).form(t)
	vf.Set("code", "123456")
	if r := h.post("/ui/verify/code", vf, nil); r.status != 200 || !strings.Contains(r.body, `role="alert"`) {
		t.Errorf("wrong code: %d %s", r.status, r.body)
	}
	h.clock.Add(30 * time.Second)
	vf.Set("code", totpCode(t, secret, h.clock.Now()))
	r := h.post("/ui/verify/code", vf, nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/verify/done?t=") {
		t.Fatalf("right code: %d %v", r.status, r.header)
	}
	done := h.get(h.url+r.header.Get("Location"), false)
	cont := regexp.MustCompile(`href="(https://panel\.example/login\?next=%2F&amp;twofactor_result=([^"]+))"`).FindStringSubmatch(done.body)
	if done.status != 200 || cont == nil {
		t.Fatalf("done page: %d %s", done.status, done.body)
	}
	// The application checks the result it got back.
	status, out := h.api("POST", "/v1/ui-results", appKey, map[string]string{"result": cont[2]})
	if status != 200 || out["outcome"] != "allow" || out["user"] != "alice" || out["method"] != "totp" || out["link_id"] == "" {
		t.Errorf("ui-results: %d %v", status, out)
	}
	if status, out := h.api("POST", "/v1/ui-results", appKey, map[string]string{"result": vf.Get("t")}); status != 422 {
		t.Errorf("a link token accepted as a result: %d %v", status, out)
	}

	// A backup code works once.
	vf.Set("code", strings.ToLower(recovery))
	if r := h.post("/ui/verify/recovery", vf, nil); r.status != http.StatusSeeOther {
		t.Errorf("recovery code: %d %s", r.status, r.body)
	} else if d := h.get(h.url+r.header.Get("Location"), false); !strings.Contains(d.body, "backup code") ||
		!strings.Contains(d.body, "You have 9 backup codes left.") {
		t.Errorf("recovery done page (want the 9 codes left said): %s", d.body)
	}
	if r := h.post("/ui/verify/recovery", vf, nil); r.status != 200 || !strings.Contains(r.body, "isn&#39;t valid") {
		t.Errorf("recovery code reused: %d", r.status)
	}

	// Links expire: pages and forms say so with 403.
	h.clock.Add(11 * time.Minute)
	if r := h.get(verify, false); r.status != http.StatusForbidden || !strings.Contains(r.body, "expired") {
		t.Errorf("expired link: %d", r.status)
	}
	if r := h.post("/ui/verify/code", vf, nil); r.status != http.StatusForbidden {
		t.Errorf("form of an expired link: %d", r.status)
	}
	if status, _ := h.api("POST", "/v1/ui-results", appKey, map[string]string{"result": cont[2]}); status != 422 {
		t.Errorf("expired result: %d", status)
	}

	// Static files: served, typed, no directory listing.
	if r := h.get(h.url+"/ui/static/style.css", false); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %v", r.status, r.header)
	}
	if r := h.get(h.url+"/ui/static/", false); r.status != 404 {
		t.Errorf("static listing: %d", r.status)
	}
}

// TestAdminPage: the admin link shows the providers; the refresh form
// needs its CSRF value.
func TestAdminPage(t *testing.T) {
	h := startHost(t, start, totpClients)
	status, out := h.api("POST", "/v1/ui-links", adminKey, map[string]string{"page": "admin"})
	if status != 201 {
		t.Fatalf("admin link: %d %v", status, out)
	}
	p := h.get(h.url+out["url"].(string), false)
	if p.status != 200 || !strings.Contains(p.body, "<th scope=\"row\">totp</th>") || !strings.Contains(p.body, "healthy") || !strings.Contains(p.body, "client") {
		t.Fatalf("admin page: %d %s", p.status, p.body)
	}
	f := p.form(t)
	if r := h.post("/ui/admin/refresh", url.Values{"t": {f.Get("t")}}, nil); r.status != http.StatusForbidden {
		t.Errorf("refresh without CSRF: %d", r.status)
	}
	if r := h.post("/ui/admin/refresh", f, nil); r.status != http.StatusSeeOther {
		t.Errorf("refresh: %d", r.status)
	}
	if strings.Contains(p.body, "what every authenticator app supports") {
		t.Error("an info diagnostic is shown as a note")
	}
	// A provider's warning is shown with the provider's fix.
	odd := startHost(t, start, strings.Replace(totpClients, "{issuer: ACME Hosting}", "{issuer: ACME Hosting, digits: 8}", 1))
	_, oout := odd.api("POST", "/v1/ui-links", adminKey, map[string]string{"page": "admin"})
	if op := odd.get(odd.url+oout["url"].(string), false); !strings.Contains(op.body, "Fix: set digits: 6") {
		t.Errorf("admin page with digits 8:\n%s", op.body)
	}
	// A user link does not open the admin page.
	uf := h.get(h.link("alice", map[string]string{"page": "enroll", "audience": "client", "provider": "totp"}), false).form(t)
	if r := h.get(h.url+"/ui/admin?t="+uf.Get("t"), false); r.status != http.StatusForbidden {
		t.Errorf("user link on the admin page: %d", r.status)
	}
}

// TestPushWithoutJavaScript: the waiting page refreshes itself (a
// <noscript> refresh) and loads the poll script from this origin; its JSON
// poll says pending, then the page itself moves on to the result.
func TestPushWithoutJavaScript(t *testing.T) {
	h, emu, f := duoVerifyPage(t, "dave")
	emu.ScriptPush("dave", duotest.Push{Result: "allow", After: 2 * time.Second})
	r := h.post("/ui/verify/push", f, nil)
	wait := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(wait, "/ui/verify/wait?t=") {
		t.Fatalf("push: %d %v %s", r.status, r.header, r.body)
	}
	p := h.get(h.url+wait, false)
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh" content="3;url=` + strings.ReplaceAll(wait, "&", "&amp;") + `"></noscript>`,
		`data-poll="/ui/verify/status?t=`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("waiting page lacks %s:\n%s", want, p.body)
		}
	}
	if !names(p.body, "wait.js") {
		t.Errorf("waiting page does not load wait.js:\n%s", p.body)
	}
	status := h.get(h.url+strings.Replace(wait, "/wait?", "/status?", 1), false)
	if status.status != 200 || !strings.Contains(status.body, `"status":"pending"`) || status.header.Get("Content-Type") != "application/json" {
		t.Errorf("status poll: %d %v %s", status.status, status.header, status.body)
	}
	if js := h.get(h.url+"/ui/static/wait.js", false); js.status != 200 || !strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Errorf("wait.js: %d %v", js.status, js.header)
	}
	// As a browser without JavaScript does: reload until it moves on.
	deadline := time.Now().Add(15 * time.Second)
	for {
		p = h.get(h.url+wait, false)
		if p.status == http.StatusSeeOther {
			break
		}
		if p.status != 200 || !strings.Contains(p.body, "Waiting for your approval") || time.Now().After(deadline) {
			t.Fatalf("waiting page: %d %s", p.status, p.body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	done := h.get(h.url+p.header.Get("Location"), false)
	if !strings.Contains(done.body, "You&#39;re verified") {
		t.Errorf("after approval: %s", done.body)
	}
	if got, want := pushAudit(h, "dave"), []string{"challenge_sent/sent", "verify/allow"}; !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
}

// TestPushEnrollmentRequired: a user Duo wants enrolled first is told so,
// with a link to Duo's enrollment portal.
func TestPushEnrollmentRequired(t *testing.T) {
	h, emu, f := duoVerifyPage(t, "erin")
	emu.SetPreauthResult("erin", "enroll", "")
	r := h.post("/ui/verify/push", f, nil)
	done := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(done, "/ui/verify/done?t=") {
		t.Fatalf("push: %d %v %s", r.status, r.header, r.body)
	}
	p := h.get(h.url+done, false)
	portal := regexp.MustCompile(`<a class="btn btn-primary" href="(https://` + regexp.QuoteMeta(emu.Host()) + `/portal\?code=[a-z0-9]+)" id="enroll-portal"`)
	if !strings.Contains(p.body, "set up your second factor with the verification service first") || !portal.MatchString(p.body) {
		t.Errorf("done page:\n%s", p.body)
	}
	// Nothing was sent: the refusal is audited as the verify it is.
	if got, want := pushAudit(h, "erin"), []string{"verify/deny"}; !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
}

// duoVerifyPage runs a host with Duo for staff against a new emulator,
// enrolls user (known to Duo, confirmed with a passcode) and opens the verify
// page: the host, the emulator and the page's form.
func duoVerifyPage(t *testing.T, user string) (*testHost, *duotest.Server, url.Values) {
	t.Helper()
	emu := startEmulator(t)
	emu.AddUser(user)
	h := startHost(t, time.Now(), duoStaff(t, emu))
	h.enrollDuo(emu, user, "staff")
	return h, emu, h.get(h.link(user, map[string]string{"page": "verify", "audience": "staff", "provider": "duo"}), false).form(t)
}
