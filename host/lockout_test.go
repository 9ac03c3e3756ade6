package host_test

import (
	"net/http"
	"testing"
	"time"
)

// TestLockout: after the free attempts the user is backed off with 429 and
// Retry-After, even for the right code and without asking the provider;
// once the backoff passes, the right code works and resets the budget.
func TestLockout(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	wrong := "000000"
	if h.code(secret) == wrong {
		wrong = "111111"
	}
	for i := 1; i <= 5; i++ {
		if v := h.verify("alice", wrong); v.status != http.StatusOK || v.str("reason") != "invalid_code" {
			t.Fatalf("wrong code %d: %d %v", i, v.status, v.body)
		}
	}
	for _, code := range []string{wrong, h.code(secret)} {
		v := h.verify("alice", code)
		if v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" || v.header.Get("Retry-After") != "30" {
			t.Fatalf("while locked: %d %v Retry-After=%q", v.status, v.body, v.header.Get("Retry-After"))
		}
	}
	// Another user is not affected.
	h.enroll("bob")
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Fatalf("after the backoff: %d %v", v.status, v.body)
	}
	// The success reset the run: five more free attempts.
	h.clock.Add(30 * time.Second)
	for i := 1; i <= 5; i++ {
		if v := h.verify("alice", wrong); v.status != http.StatusOK {
			t.Fatalf("wrong code %d after reset: %d %v", i, v.status, v.body)
		}
	}
	// The sixth failure doubles the backoff.
	h.clock.Add(31 * time.Second)
	h.verify("alice", wrong)
	if v := h.verify("alice", h.code(secret)); v.status != http.StatusTooManyRequests || v.header.Get("Retry-After") != "60" {
		t.Errorf("doubled backoff: %d %v Retry-After=%q", v.status, v.body, v.header.Get("Retry-After"))
	}
	a := h.do("GET", "/v1/audit?user=alice", adminKey, nil).body["entries"].([]any)
	locks := 0
	for _, e := range a {
		if e.(map[string]any)["event"] == "lockout" {
			locks++
		}
	}
	if locks != 3 { // at the 5th failure, the 5th after the reset, and the 6th
		t.Errorf("audit has %d lockout entries, want 3", locks)
	}
}
