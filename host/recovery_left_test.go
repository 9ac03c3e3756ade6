package host_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

// recoveryLeftRounds uses two different recovery codes of alice at once,
// the first through hosts[0] and the second through the last host, round
// after round (a new set when fewer than two are left): both let her in,
// and the two allows' audited recovery_codes_left are n-1 and n-2 — each
// its own count, never the same one twice — and n-2 is what the store
// holds afterwards.
func recoveryLeftRounds(t *testing.T, hosts []*testHost, codes []string, rounds int) {
	t.Helper()
	h := hosts[0]
	var after float64
	for round := range rounds {
		if len(codes) < 2 {
			r := h.do("POST", "/v1/users/alice/recovery-codes", appKey, nil)
			if r.status != http.StatusCreated {
				t.Fatalf("new codes: %d %v", r.status, r.body)
			}
			codes = nil
			for _, c := range r.body["recovery_codes"].([]any) {
				codes = append(codes, c.(string))
			}
		}
		n := len(codes)
		got := httpBurst(t, []*testHost{hosts[0], hosts[len(hosts)-1]}, 2, func(h *testHost, i int) response {
			return h.recover("alice", codes[i])
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
