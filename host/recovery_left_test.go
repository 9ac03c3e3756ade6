package host_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// recoveryLeftRounds uses two different recovery codes of alice at once,
// the first through hosts[0] and the second through the last host, round
// after round (a new set when fewer than two are left): both let her in,
// and the two allows' recovery_codes_left, answered and audited, are n-1
// and n-2 — each its own count, never the same one twice, and each answer
// its own allow's audited count — and n-2 is what the store holds
// afterwards.
func recoveryLeftRounds(t *testing.T, hosts []*testHost, codes []string, rounds int) {
	t.Helper()
	h := hosts[0]
	var after float64
	for round := range rounds {
		if len(codes) < 3 {
			// A new set, with the step-up of one of the codes left; its
			// own allow's audit entry is not one of this round's.
			r := h.do("POST", "/v1/users/alice/recovery-codes", appKey, map[string]any{"audience": "client",
				"step_up": map[string]string{"provider": "recovery", "code": codes[0]}})
			if r.status != http.StatusCreated {
				t.Fatalf("new codes: %d %v", r.status, r.body)
			}
			codes = nil
			for _, c := range r.body["recovery_codes"].([]any) {
				codes = append(codes, c.(string))
			}
			for _, e := range h.do("GET", fmt.Sprintf("/v1/audit?user=alice&after=%.0f&limit=1000", after), adminKey, nil).body["entries"].([]any) {
				after = max(after, e.(map[string]any)["id"].(float64))
			}
		}
		n := len(codes)
		var answered [2]any
		got := httpBurst(t, []*testHost{hosts[0], hosts[len(hosts)-1]}, 2, func(h *testHost, i int) response {
			r := h.recover("alice", codes[i])
			answered[i] = r.body["recovery_codes_left"]
			return r
		})
		codes = codes[2:]
		if got["allow/"] != 2 {
			t.Fatalf("round %d: two codes at once: %v, want two allows", round, got)
		}
		var lefts []int
		for _, e := range h.do("GET", fmt.Sprintf("/v1/audit?user=alice&after=%.0f&limit=1000", after), adminKey, nil).body["entries"].([]any) {
			m := e.(map[string]any)
			after = max(after, m["id"].(float64))
			if m["event"] == "verify" && m["provider"] == "recovery" && m["outcome"] == "allow" {
				d, _ := m["details"].(map[string]any)
				left, err := strconv.Atoi(fmt.Sprint(d["recovery_codes_left"]))
				if err != nil {
					t.Fatalf("round %d: allow audited without a count: %v", round, m)
				}
				lefts = append(lefts, left)
			}
		}
		slices.Sort(lefts)
		var answers []int
		for _, a := range answered {
			n, ok := a.(float64)
			if !ok {
				t.Fatalf("round %d: an allow by recovery code answered recovery_codes_left %v", round, a)
			}
			answers = append(answers, int(n))
		}
		slices.Sort(answers)
		if !slices.Equal(answers, lefts) {
			t.Fatalf("round %d: answered counts %v, audited %v", round, answers, lefts)
		}
		stored := hosts[len(hosts)-1].do("GET", "/v1/users/alice/recovery-codes", appKey, nil).body["remaining"]
		if !slices.Equal(lefts, []int{n - 2, n - 1}) || stored != float64(n-2) {
			t.Fatalf("round %d: two of %d codes used at once: counts %v, %v stored after; want [%d %d], %d stored", round, n, lefts, stored, n-2, n-1, n-2)
		}
	}
}

// TestRecoveryCountsLeftOneHost: recoveryLeftRounds on one host (SQLite).
func TestRecoveryCountsLeftOneHost(t *testing.T) {
	h := startHost(t, totpClients)
	h.enroll("alice")
	recoveryLeftRounds(t, []*testHost{h}, h.lastRecovery, 20)
}

// TestRecoveryCountsLeftReplicas: recoveryLeftRounds over two replicas
// sharing one PostgreSQL, each round's two codes one to each.
func TestRecoveryCountsLeftReplicas(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	recoveryLeftRounds(t, []*testHost{a, b}, replicaEnroll(t, a, "alice"), 20)
}

// TestRecoveryCodesLeftAnswered: each allow by recovery code answers how
// many of the user's codes are left, down to 0 for the last; a recovery
// code denied and an allow by another factor answer no count.
func TestRecoveryCodesLeftAnswered(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	codes := h.lastRecovery
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" || v.body["recovery_codes_left"] != nil {
		t.Errorf("a TOTP allow: %d %v, want an allow without recovery_codes_left", v.status, v.body)
	}
	if v := h.recover("alice", "AAAA-BBBB-CCCC-DDDD"); v.str("outcome") != "deny" || v.body["recovery_codes_left"] != nil {
		t.Errorf("a wrong recovery code: %d %v, want a deny without recovery_codes_left", v.status, v.body)
	}
	for i, c := range codes {
		v := h.recover("alice", c)
		if left, ok := v.body["recovery_codes_left"].(float64); v.str("outcome") != "allow" || !ok || int(left) != len(codes)-1-i {
			t.Fatalf("code %d of %d: %d %v, want an allow with recovery_codes_left %d", i+1, len(codes), v.status, v.body, len(codes)-1-i)
		}
	}
	if v := h.recover("alice", codes[0]); v.str("outcome") != "deny" || v.body["recovery_codes_left"] != nil {
		t.Errorf("a used recovery code: %d %v, want a deny without recovery_codes_left", v.status, v.body)
	}
}
