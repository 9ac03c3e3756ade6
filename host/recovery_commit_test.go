package host_test

import (
	"context"
	"net/http"
	"testing"
)

// recoveryBurstProviders lets all of a burst's 50 requests through the
// recovery budget's gate, so each one is decided and races to commit.
const recoveryBurstProviders = totpClients + "lockout: {free_attempts: 60, max_failures: 100}\n"

// recoveryBurst is how many requests use one recovery code at once.
const recoveryBurst = 50

// wantOneRecoveryAllow checks a burst's answers: exactly one allow, every
// other request a deny of an unknown code.
func wantOneRecoveryAllow(t *testing.T, got map[string]int) {
	t.Helper()
	if got["allow/"] != 1 || got["deny/invalid_code"] != recoveryBurst-1 {
		t.Fatalf("%d requests with one recovery code at once: %v; want one allow/, the rest deny/invalid_code", recoveryBurst, got)
	}
}

// TestRecoveryCodeBurstOneHost: one recovery code in 50 simultaneous
// requests to one host lets exactly one in; the user has one code less.
func TestRecoveryCodeBurstOneHost(t *testing.T) {
	h := startHost(t, recoveryBurstProviders)
	h.enroll("alice")
	code := h.lastRecovery[0]
	wantOneRecoveryAllow(t, httpBurst(t, []*testHost{h}, recoveryBurst, func(h *testHost, _ int) response { return h.recover("alice", code) }))
	if r := h.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 9.0 {
		t.Errorf("remaining after the burst: %v, want 9", r.body)
	}
}

// replicaEnroll enrolls user through a replica (on the real clock) and
// returns the recovery codes it was given.
func replicaEnroll(t *testing.T, h *testHost, user string) []string {
	t.Helper()
	r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	secret := otpSecret(t, r)
	c := h.do("POST", "/v1/users/"+user+"/enrollments/totp/confirm", appKey, map[string]string{"code": realCode(t, secret, 0)})
	if c.str("status") != "active" {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}
	var codes []string
	for _, rc := range c.body["recovery_codes"].([]any) {
		codes = append(codes, rc.(string))
	}
	return codes
}

// TestRecoveryCodeBurstReplicas: the same burst split over two replicas
// sharing one PostgreSQL.
func TestRecoveryCodeBurstReplicas(t *testing.T) {
	config := postgresConfig(t, recoveryBurstProviders)
	a, b := startReplica(t, config), startReplica(t, config)
	codes := replicaEnroll(t, a, "alice")
	wantOneRecoveryAllow(t, httpBurst(t, []*testHost{a, b}, recoveryBurst, func(h *testHost, _ int) response { return h.recover("alice", codes[0]) }))
	if r := b.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 9.0 {
		t.Errorf("remaining after the burst: %v, want 9", r.body)
	}
}

// TestRecoveryCodeKeptWhenCommitFailsPostgres: a recovery code whose
// decision cannot be committed is not used up. A real `twofactor serve`
// on PostgreSQL; a backup-style LOCK TABLE on the audit log (held by
// another session) lets the gate and the code's check through but makes
// the decision's commit fail on lock_timeout: 503 store_unavailable. Once
// the lock is gone the same code lets the user in, once.
func TestRecoveryCodeKeptWhenCommitFailsPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	config, _ := postgresConfigAt(t, dsn, totpClients)
	h := startReplica(t, config)
	codes := replicaEnroll(t, h, "alice")

	ctx := context.Background()
	tx := holdLock(t, dsn, `LOCK TABLE audit IN ACCESS EXCLUSIVE MODE`)
	r := h.recover("alice", codes[0])
	wantStoreUnavailable(t, "a recovery code while the audit log is locked", r)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if r := h.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 10.0 {
		t.Errorf("remaining after the failed commit: %v, want 10", r.body)
	}
	if r := h.recover("alice", codes[0]); r.status != http.StatusOK || r.str("outcome") != "allow" {
		t.Fatalf("the code after the failed commit: %d %v, want allow", r.status, r.body)
	}
	if r := h.recover("alice", codes[0]); r.str("outcome") != "deny" || r.str("reason") != "invalid_code" {
		t.Fatalf("the code a second time: %d %v, want deny/invalid_code", r.status, r.body)
	}
}
