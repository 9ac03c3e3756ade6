package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnlock: an admin ends a lockout without deleting the user's factor,
// through the API (admin scope only; an app key gets 403 and changes
// nothing) and through twofactor unlock; after each, the user's valid
// code is allowed, and the audit log names the unlock and who did it.
// The lock here is the permanent one (max_failures), which no wait ends.
func TestUnlock(t *testing.T) {
	h := startHost(t, totpClients+"lockout: {free_attempts: 2, max_failures: 3, backoff: 1s, max_backoff: 1s}\n")
	secret := h.enroll("alice")
	wrong := func() string {
		if h.code(secret) == "000000" {
			return "111111"
		}
		return "000000"
	}
	lockOut := func(t *testing.T) {
		t.Helper()
		for i := 0; i < 3; i++ {
			h.clock.Add(2 * time.Second) // past each backoff: only the cap locks
			h.verify("alice", wrong())
		}
		h.clock.Add(24 * time.Hour)
		if v := h.verify("alice", h.code(secret)); v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" {
			t.Fatalf("a day after max_failures, the valid code: %d %v; want 429 locked_out", v.status, v.body)
		}
	}
	unlocks := func() []string {
		var actors []string
		for _, e := range h.do("GET", "/v1/audit?user=alice", adminKey, nil).body["entries"].([]any) {
			if m := e.(map[string]any); m["event"] == "unlock" {
				actors = append(actors, m["actor"].(string))
			}
		}
		return actors
	}
	allowed := func(t *testing.T, how string) {
		t.Helper()
		h.clock.Add(30 * time.Second) // a fresh code
		if v := h.verify("alice", h.code(secret)); v.status != http.StatusOK || v.str("outcome") != "allow" {
			t.Fatalf("after %s: %d %v", how, v.status, v.body)
		}
	}

	t.Run("api", func(t *testing.T) {
		lockOut(t)
		if r := h.do("POST", "/v1/users/alice/unlock", appKey, nil); r.status != http.StatusForbidden {
			t.Fatalf("app key: %d %v, want 403", r.status, r.body)
		}
		if v := h.verify("alice", h.code(secret)); v.status != http.StatusTooManyRequests {
			t.Fatalf("an app key's refused unlock changed something: %d %v", v.status, v.body)
		}
		if r := h.do("POST", "/v1/users/alice/unlock", adminKey, nil); r.status != http.StatusNoContent {
			t.Fatalf("admin key: %d %v, want 204", r.status, r.body)
		}
		allowed(t, "the API unlock")
		if got := unlocks(); len(got) != 1 || got[0] != "ops" {
			t.Errorf("audit unlock entries by %v, want [ops]", got)
		}
		en := h.do("GET", "/v1/users/alice/enrollments", appKey, nil)
		if !strings.Contains(toJSON(en.body), `"totp"`) {
			t.Errorf("the factor is gone after an unlock: %v", en.body)
		}
	})

	t.Run("cli", func(t *testing.T) {
		lockOut(t)
		code, out, stderr := runCLI("unlock", "--config", h.configPath, "alice")
		if code != 0 || !strings.Contains(out, "alice") {
			t.Fatalf("unlock: exit %d %q %q", code, out, stderr)
		}
		allowed(t, "twofactor unlock")
		if got := unlocks(); len(got) != 2 || got[1] != "cli" {
			t.Errorf("audit unlock entries by %v, want [ops cli]", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{{"unlock", "--config", h.configPath}, {"unlock", "--config", h.configPath, "al\x01ice"},
			{"unlock", "--config", h.configPath, "alice", "bob"}, {"reset", "--config", h.configPath, "alice"}} {
			if code, _, stderr := runCLI(args...); code == 0 || stderr == "" {
				t.Errorf("%q: exit %d %q", args, code, stderr)
			}
		}
		if r := h.doRaw("POST", "/v1/users/"+strings.Repeat("x", 300)+"/unlock", adminKey, nil); r.status != http.StatusBadRequest {
			t.Errorf("overlong user: %d %v", r.status, r.body)
		}
		if got := unlocks(); len(got) != 2 {
			t.Errorf("bad input was audited as an unlock: %v", got)
		}
	})

	// reset shares unlock's command plumbing (onStore); unlike unlock it
	// removes the factor.
	t.Run("reset removes the factor", func(t *testing.T) {
		if code, out, stderr := runCLI("reset", "--config", h.configPath, "alice", "totp"); code != 0 || !strings.Contains(out, "removed alice's totp") {
			t.Fatalf("reset: exit %d %q %q", code, out, stderr)
		}
		if v := h.verify("alice", h.code(secret)); v.str("reason") != "not_enrolled" {
			t.Errorf("after reset: %d %v", v.status, v.body)
		}
	})
}
