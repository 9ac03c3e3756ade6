package ui_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestGraceResultGivesNoSetup: the result a grace login hands the
// application (twofactor_result on its return URL: in its logs, its
// history, the Referer its page sends) is the very token of the grace
// result page, which offers setup links. Whoever reads the application's
// URL opens that page with it and sets up a factor of their own on an
// account that has none (its recovery codes too): no password, no step-up.
// The application's copy must say what was decided, and open no setup.
func TestGraceResultGivesNoSetup(t *testing.T) {
	h := startHost(t, start, totpClients, policy("  clients: {require: true, grace_logins: 2}\n"))
	p := h.get(h.link("gina", map[string]string{"page": "verify", "audience": "client", "return_url": "https://panel.example/home"}), false)
	done := h.get(h.url+p.header.Get("Location"), false)
	if !strings.Contains(done.body, `id="setup-totp"`) {
		t.Fatalf("grace result page: %d %.300s", done.status, done.body)
	}
	tok := resultOf(t, done.href(t, "continue")) // what the application gets
	if res := h.result(tok); res["outcome"] != "allow" || res["method"] != "grace_login" {
		t.Fatalf("result: %v", res)
	}

	// Someone who read the application's URL.
	leaked := h.get(h.url+"/ui/verify/done?t="+url.QueryEscape(tok), false)
	if strings.Contains(leaked.body, `id="setup-`) {
		setup := h.get(h.url+leaked.href(t, "setup-totp"), false)
		_, secret, confirm := h.beginSetup(strings.TrimPrefix(setup.url, h.url))
		r := h.post("/ui/enroll/confirm", with(confirm, "code", totpCode(t, secret, h.clock.Now())), nil)
		t.Errorf("the application's result token opens setup links: set up with it: %d %q; enrollments %v",
			r.status, titleOf(r.body), h.enrollments("gina"))
	}
}

func titleOf(body string) string {
	_, after, _ := strings.Cut(body, "<title>")
	title, _, _ := strings.Cut(after, "</title>")
	return title
}
