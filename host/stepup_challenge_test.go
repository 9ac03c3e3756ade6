package host_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestStepUpWithSecurityKey: a user whose factor needs a challenge steps
// up with it: the application starts a verification (POST
// .../verifications) and sends the security key's answer with its txid.
// One key's assertion removes the other key; the same assertion again
// is refused (its challenge was used up: 404) and changes nothing; a
// fresh one gets new recovery codes. A step-up that sends a txid and no answer (a poll)
// and one that sends a code and a credential are refused before anything
// is checked.
func TestStepUpWithSecurityKey(t *testing.T) {
	h := webauthnHost(t)
	keys := newKeys(2)
	codes := enrollKeys(t, h, h, "alice", keys)
	assertion := func() (string, json.RawMessage) { return h.keyAssertion("alice", keys[1]) }
	removeWith := func(id string, stepUp map[string]any) response { return h.removeKey("alice", id, stepUp) }
	regenerateWith := func(stepUp map[string]any) response { return h.regenerate("alice", stepUp) }

	txid, answer := assertion()
	for _, tt := range []struct {
		name   string
		stepUp map[string]any
	}{
		{"a txid and no answer", map[string]any{"provider": "webauthn", "txid": txid}},
		{"a code and a credential", map[string]any{"provider": "webauthn", "txid": txid, "code": "123456", "credential": answer}},
	} {
		if r := removeWith(keys[0].ID(), tt.stepUp); r.status != http.StatusBadRequest || r.errCode() != "invalid_request" {
			t.Errorf("%s: %d %v, want 400 invalid_request", tt.name, r.status, r.body)
		}
	}
	if r := removeWith(keys[0].ID(), keyStepUp(txid, answer)); r.status != http.StatusOK {
		t.Fatalf("remove one key with the other's assertion: %d %v", r.status, r.body)
	}
	if ids := h.keysOf("alice"); !slices.Equal(ids, []string{keys[1].ID()}) {
		t.Fatalf("keys left: %v, want the one that stepped up", ids)
	}
	// Its challenge was used up by the allow: the txid is no longer one.
	if r := regenerateWith(keyStepUp(txid, answer)); r.status != http.StatusNotFound || r.errCode() != "not_found" {
		t.Errorf("the same assertion again: %d %v, want 404 not_found", r.status, r.body)
	}
	if v := h.recover("alice", codes[0]); v.str("outcome") != "allow" {
		t.Errorf("an old recovery code after the refused step-up: %v, want it still good", v.body)
	}
	r := regenerateWith(keyStepUp(assertion()))
	if r.status != http.StatusCreated || len(r.body["recovery_codes"].([]any)) != 10 {
		t.Fatalf("new codes with a fresh assertion: %d %v", r.status, r.body)
	}
	if v := h.recover("alice", codes[1]); v.str("outcome") != "deny" {
		t.Errorf("an old recovery code after new ones: %v", v.body)
	}
}

// TestStepUpWithEmailedCode: a user whose only factor is email steps up
// with a code mailed for it: a wrong code with the txid is refused (and
// counts), the mailed one gets new recovery codes once, and the same code
// again is refused (its challenge used up).
func TestStepUpWithEmailedCode(t *testing.T) {
	h, srv := startEmailHost(t)
	const addr = "bob@x.example"
	enrollEmail(t, h, srv, "bob", addr)
	regenerateWith := func(stepUp map[string]string) response { return h.regenerate("bob", stepUp) }
	n := len(srv.Messages())
	s := h.do("POST", "/v1/users/bob/verifications", appKey, map[string]string{"provider": "email", "audience": "client"})
	if s.status != http.StatusCreated || s.str("txid") == "" {
		t.Fatalf("start: %d %v", s.status, s.body)
	}
	code := srv.LastCode(t, n, addr)
	if r := regenerateWith(map[string]string{"provider": "email", "txid": s.str("txid"), "code": wrong(code)}); r.status != http.StatusUnprocessableEntity || r.errCode() != "invalid_code" {
		t.Errorf("a wrong code: %d %v, want 422 invalid_code", r.status, r.body)
	}
	if n := h.auditCount("bob", "recovery.issued", "issued"); n != 1 {
		t.Errorf("%d sets audited after the wrong code, want the first factor's 1", n)
	}
	if n := h.auditCount("bob", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want the wrong code's 1", n)
	}
	if r := regenerateWith(map[string]string{"provider": "email", "txid": s.str("txid"), "code": code}); r.status != http.StatusCreated {
		t.Fatalf("the mailed code: %d %v", r.status, r.body)
	}
	if r := regenerateWith(map[string]string{"provider": "email", "txid": s.str("txid"), "code": code}); r.status != http.StatusNotFound || r.errCode() != "not_found" {
		t.Errorf("the mailed code again: %d %v, want 404 not_found (its challenge used up)", r.status, r.body)
	}
	if n := h.auditCount("bob", "recovery.issued", "issued"); n != 2 {
		t.Errorf("%d sets audited, want 2", n)
	}
}

// TestStepUpWithSecurityKeyBurstReplicas: one security key's assertion
// sent 8 times at once as the step-up for new recovery codes, split over
// two replicas on PostgreSQL, issues one set.
func TestStepUpWithSecurityKeyBurstReplicas(t *testing.T) {
	a, b := webauthnReplicas(t)
	keys := newKeys(1)
	enrollKeys(t, a, b, "alice", keys)
	txid, answer := a.keyAssertion("alice", keys[0])
	got := httpBurst(t, []*testHost{a, b}, 8, func(h *testHost, _ int) response {
		return h.regenerate("alice", keyStepUp(txid, answer))
	})
	t.Logf("answers: %v", got)
	for v := range got {
		// Issued (201 with codes: verdictOf says "/"); the assertion
		// refused (422: the key's signature counter or the challenge
		// already used), the challenge gone (404), lost to the
		// compare-and-swap of the key's state (409), or held at the gate
		// (429).
		if v != "/" && v != "422" && v != "404" && v != "409" && v != "429" {
			t.Errorf("unexpected answer %q in the burst: %v", v, got)
		}
	}
	if issued := b.auditCount("alice", "recovery.issued", "issued"); got["/"] != 1 || issued != 2 {
		t.Errorf("one assertion 8 times at once over two replicas: %v, %d sets audited; want one new set (and the first key's)", got, issued)
	}
}

// keyStepUp is a step-up with a security key's answer to the challenge
// txid.
func keyStepUp(txid string, answer json.RawMessage) map[string]any {
	return map[string]any{"provider": "webauthn", "txid": txid, "credential": answer}
}
