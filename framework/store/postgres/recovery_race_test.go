package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
)

// TestRecoveryUsesRacingReplacementAcrossReplicas is the conformance
// suite's Recovery/UsesRacingReplacement with the uses spread over two
// stores on one schema, as two replicas, and the replacement on the
// second. Without one lock for a decision's use and a replacement, their
// deletes could row-lock the user's codes in opposite orders until the
// server ended the deadlock by failing one of them.
func TestRecoveryUsesRacingReplacementAcrossReplicas(t *testing.T) {
	dsn := newSchema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	storetest.RecoveryUsesRacingReplacement(t, a, b)
}

// TestReplacementWaitsForOlderRelease: a replica of a release before the
// shared recovery lock replaces codes under (recoveryLock, hashtext(user))
// alone; a replacement of this release waits for it (here until
// lock_timeout, held by a session standing in for the older replica), so
// two replacements on replicas of the two releases cannot leave both sets
// during a rolling upgrade.
func TestReplacementWaitsForOlderRelease(t *testing.T) {
	s, _, admin := openNamed(t)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT pg_advisory_xact_lock($1, hashtext($2))`, recoveryLock, "alice"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.ReplaceRecoveryCodes(t.Context(), "alice", [][]byte{[]byte("a")}, time.Now())
	if !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("replacement while an older release holds its lock: %v, want ErrStoreUnavailable after lock_timeout", err)
	}
	t.Logf("waited %v", time.Since(start).Round(time.Millisecond))
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRecoveryCodes(t.Context(), "alice", [][]byte{[]byte("a")}, time.Now()); err != nil {
		t.Fatalf("replacement once the lock is released: %v", err)
	}
}
