package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// TestSecurityStepUpWithSentCode: a user whose only factor is a code
// mailed to them steps up on the security page: the page offers to send
// one (no code field before), a code posted before any was sent is
// refused, as is a send without the CSRF value; "send" mails one and
// binds the step-up's token to its challenge, a second press at once
// sends nothing (within the provider's resend wait), and the code gets
// new backup codes once. Refused, with nothing changed: a sign-in's
// mailed code and txid with the step-up's token, the step-up's code on
// the sign-in page, another action's code with this step-up's token; a
// send while the sign-in's code is pending sends nothing and binds
// nothing. Sends past the framework's send limit are refused, and said.
func TestSecurityStepUpWithSentCode(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, start, emailClients(srv))
	const addr = "ivy@x.example"
	if status, out := h.api("POST", "/v1/users/ivy/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", status, out)
	}
	if status, out := h.api("POST", "/v1/users/ivy/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, 0, addr)}); status != http.StatusOK {
		t.Fatalf("confirm: %d %v", status, out)
	}
	f := h.get(h.link("ivy", map[string]string{"page": "security", "audience": "client"}), false).form(t)
	stepUp := func(action string) url.Values {
		t.Helper()
		return with(h.post("/ui/security/stepup", with(f, "action", action), nil).form(t), "provider", "email")
	}
	unchanged := func(what string, r page) {
		t.Helper()
		if codeRE.MatchString(r.body) || h.codesLeft("ivy") != 10 || len(h.enrollments("ivy")) != 1 {
			t.Errorf("%s: %d %s %.300s", what, r.status, r.header.Get("Location"), r.body)
		}
	}
	s := h.post("/ui/security/stepup", with(f, "action", "regenerate"), nil)
	if !strings.Contains(s.body, `id="send-email"`) || strings.Contains(s.body, `id="code"`) {
		t.Fatalf("step-up page of an email user: %d %s", s.status, s.body)
	}
	strict(t, "sent-code step-up page", s)
	regen := with(s.form(t), "provider", "email")
	if p := h.post("/ui/security/send", with(regen, "csrf", ""), nil); p.status != http.StatusForbidden || len(srv.Messages()) != 1 {
		t.Errorf("a send without the CSRF value: %d, %d messages", p.status, len(srv.Messages()))
	}
	if r := h.post("/ui/security/confirm", with(regen, "code", "123456"), nil); !strings.Contains(r.body, "Send a code first") {
		t.Errorf("a code before any was sent: %d %.300s", r.status, r.body)
	}

	// A sign-in's mailed code, and the removal step-up's.
	n := len(srv.Messages())
	vf := with(h.get(h.link("ivy", map[string]string{"page": "verify", "audience": "client"}), true).form(t), "provider", "email")
	signIn := h.get(h.url+h.post("/ui/verify/send", vf, nil).header.Get("Location"), false).form(t)
	signInCode := srv.LastCode(t, n, addr)
	// Sent at once after the sign-in's: nothing is sent, and the step-up
	// is not bound to the sign-in's challenge.
	n = len(srv.Messages())
	if p := h.post("/ui/security/send", regen, nil); !strings.Contains(p.body, "A code was sent a moment ago") || strings.Contains(p.body, `id="code"`) || len(srv.Messages()) != n {
		t.Errorf("a step-up's send while the sign-in's code is pending: %d %s", p.status, p.body)
	} else if r := h.post("/ui/security/confirm", with(with(p.form(t), "provider", "email"), "code", signInCode), nil); !strings.Contains(r.body, "Send a code first") {
		t.Errorf("the sign-in's code with that page's token: %d %.300s", r.status, r.body)
	}
	h.clock.Add(31 * time.Second)
	n = len(srv.Messages())
	removal := with(h.post("/ui/security/send", stepUp("remove:email"), nil).form(t), "provider", "email")
	removalCode := srv.LastCode(t, n, addr)
	h.clock.Add(31 * time.Second)

	n = len(srv.Messages())
	sent := h.post("/ui/security/send", regen, nil)
	if sent.status != http.StatusOK || !strings.Contains(sent.body, `id="code"`) || !strings.Contains(sent.body, `id="resend-email"`) {
		t.Fatalf("send: %d %s", sent.status, sent.body)
	}
	strict(t, "sent-code step-up page, sent", sent)
	code := srv.LastCode(t, n, addr)
	bound := with(sent.form(t), "provider", "email")
	if again := h.post("/ui/security/send", bound, nil); !strings.Contains(again.body, "A code was sent a moment ago") || len(srv.Messages()) != n+1 {
		t.Errorf("send again at once: %d messages, %.300s", len(srv.Messages())-n, again.body)
	}
	unchanged("a sign-in's code with the step-up's token", h.post("/ui/security/confirm", with(bound, "code", signInCode), nil))
	unchanged("a sign-in's code and token", h.post("/ui/security/confirm", with(with(signIn, "provider", "email"), "code", signInCode), nil))
	unchanged("the step-up's code on the sign-in page", h.post("/ui/verify/code", with(with(vf, "provider", "email"), "code", code), nil))
	unchanged("the removal's code with this step-up's token", h.post("/ui/security/confirm", with(bound, "code", removalCode), nil))
	unchanged("this step-up's code with the removal's token", h.post("/ui/security/confirm", with(removal, "code", code), nil))
	h.api("POST", "/v1/users/ivy/unlock", adminKey, nil) // the refusals above counted

	r := h.post("/ui/security/confirm", with(bound, "code", code), nil)
	if got := codeRE.FindAllStringSubmatch(r.body, -1); r.status != 200 || len(got) != 10 {
		t.Fatalf("the mailed code: %d %.500s", r.status, r.body)
	}
	if r := h.post("/ui/security/confirm", with(bound, "code", code), nil); codeRE.MatchString(r.body) {
		t.Errorf("the same code again: %d %.300s", r.status, r.body)
	}

	// Sends are bounded as at sign-in: once past the limit, refused.
	limited := false
	for i := 0; i < 12 && !limited; i++ {
		h.clock.Add(31 * time.Second)
		n = len(srv.Messages())
		p := h.post("/ui/security/send", regen, nil)
		if limited = strings.Contains(p.body, "Too many codes were sent"); limited && len(srv.Messages()) != n {
			t.Errorf("a send refused by the limit mailed a code")
		}
	}
	if !limited {
		t.Errorf("12 more sends: none refused by the send limit")
	}
}
