package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// TestLinkInputs: an enroll link's inputs are checked against what the
// provider declares when the link is made (a clear 400 naming the input
// otherwise); they prefill the enroll page, and with fix_inputs they are
// shown read-only and are the only ones used, whatever the form posts.
func TestLinkInputs(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), emailClients(srv), totpClients)

	for _, tc := range []struct {
		name string
		body map[string]any
		want string // in the error message; "" for a link
	}{
		{"prefill", map[string]any{"page": "enroll", "provider": "email", "inputs": map[string]string{"email": "a@x.example"}}, ""},
		{"fixed", map[string]any{"page": "enroll", "provider": "email", "inputs": map[string]string{"email": "a@x.example"}, "fix_inputs": true}, ""},
		{"undeclared input", map[string]any{"page": "enroll", "provider": "email", "inputs": map[string]string{"phone": "1"}}, "inputs.phone"},
		{"fixed without the required one", map[string]any{"page": "enroll", "provider": "email", "inputs": map[string]string{"email": ""}, "fix_inputs": true}, "inputs.email"},
		{"fixed without inputs", map[string]any{"page": "enroll", "provider": "email", "fix_inputs": true}, "fix_inputs"},
		{"too long", map[string]any{"page": "enroll", "provider": "email", "inputs": map[string]string{"email": strings.Repeat("a", 321)}}, "inputs.email"},
		{"provider without inputs", map[string]any{"page": "enroll", "provider": "totp", "inputs": map[string]string{"email": "a@x.example"}}, "asks no enrollment inputs"},
		{"verify link", map[string]any{"page": "verify", "provider": "email", "inputs": map[string]string{"email": "a@x.example"}}, "enroll links only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["audience"] = "client"
			status, out := h.api("POST", "/v1/users/erin/ui-links", appKey, tc.body)
			if tc.want == "" {
				if status != http.StatusCreated {
					t.Fatalf("%d %v", status, out)
				}
				return
			}
			e, _ := out["error"].(map[string]any)
			if msg, _ := e["message"].(string); status != http.StatusBadRequest || e["code"] != "invalid_request" || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %v, want 400 naming %q", status, out, tc.want)
			}
		})
	}
	if status, out := h.api("POST", "/v1/ui-links", adminKey, map[string]any{"page": "admin", "inputs": map[string]string{"email": "a@x.example"}}); status != http.StatusBadRequest {
		t.Errorf("admin link with inputs: %d %v", status, out)
	}

	// What the enroll form posts: the address typed over a prefilled one
	// is used; over a fixed one it is not.
	begin := func(t *testing.T, user string, link map[string]any, typed string) page {
		t.Helper()
		p := h.get(h.link(user, link), true)
		f := p.form(t)
		f.Set("input_email", typed)
		return h.post("/ui/enroll/begin", f, nil)
	}
	prefill := map[string]any{"page": "enroll", "audience": "client", "provider": "email", "inputs": map[string]string{"email": "old@x.example"}}
	if p := h.get(h.link("frank", prefill), true); !strings.Contains(p.body, `value="old@x.example"`) || strings.Contains(p.body, "readonly") {
		t.Errorf("prefilled page: %s", p.body)
	}
	n := len(srv.Messages())
	if p := begin(t, "frank", prefill, "new@x.example"); !strings.Contains(p.body, `id="code"`) {
		t.Fatalf("begin with a typed address: %d %s", p.status, p.body)
	}
	srv.LastCode(t, n, "new@x.example")

	fixed := map[string]any{"page": "enroll", "audience": "client", "provider": "email", "inputs": map[string]string{"email": "boss@x.example"}, "fix_inputs": true}
	if p := h.get(h.link("gina", fixed), true); !strings.Contains(p.body, `value="boss@x.example"`) || !strings.Contains(p.body, "readonly") {
		t.Errorf("fixed page: %s", p.body)
	}
	n = len(srv.Messages())
	if p := begin(t, "gina", fixed, "mine@x.example"); !strings.Contains(p.body, `id="code"`) {
		t.Fatalf("begin with a fixed address: %d %s", p.status, p.body)
	}
	srv.LastCode(t, n, "boss@x.example")
	for _, m := range srv.Messages()[n:] {
		if strings.Join(m.To, ",") != "boss@x.example" {
			t.Errorf("a fixed address was replaced: mail to %v", m.To)
		}
	}

	// A malformed address: the page says what is wrong, keeps what was
	// typed, and nothing is mailed or stored.
	n = len(srv.Messages())
	p := begin(t, "hank", map[string]any{"page": "enroll", "audience": "client", "provider": "email"}, "not an address")
	if !strings.Contains(p.body, "Email address: is not an email address") || !strings.Contains(p.body, `value="not an address"`) {
		t.Errorf("malformed address: %d %s", p.status, p.body)
	}
	if got := len(srv.Messages()); got != n {
		t.Errorf("%d mails sent for a malformed address", got-n)
	}
	if status, out := h.api("GET", "/v1/users/hank/enrollments", appKey, nil); status != http.StatusOK || len(out["enrollments"].([]any)) != 0 {
		t.Errorf("enrollments after a malformed address: %d %v", status, out)
	}
}

// TestSendPageWithoutScript: the login page of a provider that sends its
// code works as plain HTML: "Send code" posts, the page then renders the
// seconds left before a resend on the host's clock, and the code posted
// with the form's token (which carries the txid) verifies.
func TestSendPageWithoutScript(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), emailClients(srv))
	const addr = "ivy@x.example"
	if status, out := h.api("POST", "/v1/users/ivy/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", status, out)
	}
	if status, out := h.api("POST", "/v1/users/ivy/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, 0, addr)}); status != http.StatusOK {
		t.Fatalf("confirm: %d %v", status, out)
	}

	p := h.get(h.link("ivy", map[string]string{"page": "verify", "audience": "client"}), true)
	if !strings.Contains(p.body, `id="send"`) || strings.Contains(p.body, `id="code"`) {
		t.Fatalf("login page before sending: %s", p.body)
	}
	n := len(srv.Messages())
	f := p.form(t)
	f.Set("provider", "email")
	sent := h.post("/ui/verify/send", f, nil)
	if sent.status != http.StatusSeeOther {
		t.Fatalf("send: %d %s", sent.status, sent.body)
	}
	code := srv.LastCode(t, n, addr)
	next := h.url + sent.header.Get("Location")
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{
		{0, `data-resend-in="30">Resend in 30 s<`},
		{10*time.Second + 500*time.Millisecond, `data-resend-in="20">Resend in 20 s<`}, // rounded up
		{20 * time.Second, `data-resend-in="0">Resend code<`},
	} {
		h.clock.Add(tc.after)
		if p = h.get(next, false); !strings.Contains(p.body, tc.want) || !strings.Contains(p.body, `id="code"`) {
			t.Errorf("the sent page %s later: want %s in\n%s", tc.after, tc.want, p.body)
		}
	}
	f = p.form(t)
	f.Set("provider", "email")
	f.Set("code", code)
	if done := h.post("/ui/verify/code", f, nil); done.status != http.StatusSeeOther || !strings.HasPrefix(done.header.Get("Location"), "/ui/verify/done?t=") {
		t.Errorf("verify the code: %d %s %s", done.status, done.header.Get("Location"), done.body)
	}
	if again := h.post("/ui/verify/code", f, nil); again.status != http.StatusOK || !strings.Contains(again.body, "send a new one") {
		t.Errorf("the used code again: %d %s", again.status, again.body)
	}
	// A code posted with a form token that names no challenge is refused
	// before the framework: the txid comes only from a signed token.
	p = h.get(h.link("ivy", map[string]string{"page": "verify", "audience": "client"}), true)
	f = p.form(t)
	f.Set("provider", "email")
	f.Set("code", code)
	if r := h.post("/ui/verify/code", f, nil); r.status != http.StatusOK || !strings.Contains(r.body, "Send a code first") {
		t.Errorf("a code without a challenge: %d %s", r.status, r.body)
	}
}
