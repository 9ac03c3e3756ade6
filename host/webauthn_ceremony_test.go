package host_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// TestWebAuthnRefusedRegistrationSpent: through the HTTP API and the
// plugin binary, a registration refused for a wrong answer (another
// origin) is spent, on a first key and on an added one: the right answer
// to the same options is refused as replayed and registers nothing.
func TestWebAuthnRefusedRegistrationSpent(t *testing.T) {
	h := webauthnHost(t)
	enrollKeys(t, h, h, "bob", newKeys(1)) // bob adds; alice begins
	for _, user := range []string{"alice", "bob"} {
		before := h.keysOf(user)
		r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "webauthn", "audience": "client"})
		d, _ := r.body["display"].(map[string]any)
		public, _ := d["public"].(string)
		if r.status != http.StatusCreated || public == "" {
			t.Fatalf("%s: enroll: %d %v", user, r.status, r.body)
		}
		confirm := func(a *webauthntest.Authenticator) response {
			t.Helper()
			att, err := a.Create(public)
			if err != nil {
				t.Fatal(err)
			}
			return h.do("POST", "/v1/users/"+user+"/enrollments/webauthn/confirm", appKey, map[string]any{"credential": json.RawMessage(att)})
		}
		phished := webauthntest.New("http://localhost:9999")
		if c := confirm(phished); c.status != http.StatusUnprocessableEntity || c.errCode() != "x-wrong_origin" {
			t.Fatalf("%s: confirm from another origin: %d %v, want 422 x-wrong_origin", user, c.status, c.body)
		}
		if c := confirm(webauthntest.New(webauthnOrigin)); c.status != http.StatusUnprocessableEntity || c.errCode() != "replayed" {
			t.Errorf("%s: the right answer after a refused one: %d %v, want 422 replayed", user, c.status, c.body)
		}
		if after := h.keysOf(user); len(after) != len(before) {
			t.Errorf("%s: keys %v after the refusals, want %v", user, after, before)
		}
	}
}

// TestWebAuthnUserVerificationReload: a login challenge issued while
// user_verification is preferred, answered by a key that did not verify
// the user after a reload made it required, is refused: the policy in
// force when the answer is checked applies.
func TestWebAuthnUserVerificationReload(t *testing.T) {
	h := webauthnHost(t)
	key := newKeys(1)[0] // never verifies the user
	enrollKeys(t, h, h, "alice", []*webauthntest.Authenticator{key})
	txid, answer := h.keyAssertion("alice", key)

	text, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(text), "rp_display_name: ACME", "rp_display_name: ACME\n      user_verification: required", 1)
	if next == string(text) {
		t.Fatalf("the config has no rp_display_name to add the setting after:\n%s", text)
	}
	if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload refused: %v", ev.Err)
	}
	v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]any{"provider": "webauthn", "audience": "client",
		"txid": txid, "credential": answer})
	if v.str("outcome") != "deny" || v.str("reason") != "x-user_verification_required" {
		t.Errorf("an answer without user verification after the reload: %d %v, want deny x-user_verification_required", v.status, v.body)
	}
}
