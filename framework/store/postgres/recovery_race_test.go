package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestRecoveryUsesRacingReplacementAcrossReplicas is the conformance
// suite's Recovery/UsesRacingReplacement with the uses spread over two
// stores on one schema, as two replicas, and the replacement on the
// second. Without one lock for a decision's use and a replacement, their
// deletes could row-lock the user's codes in opposite orders until the
// server ended the deadlock by failing one of them.
func TestRecoveryUsesRacingReplacementAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
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

// TestIssueRecoveryCodesRollsBackWithAudit: a new set of recovery codes
// and its audit entry are one transaction. With the audit table refusing
// inserts (a trigger: a real failure inside the transaction, after the
// codes were replaced), the issue fails and the old codes are the user's,
// unchanged; once the trigger is gone it goes through, audited.
func TestIssueRecoveryCodesRollsBackWithAudit(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	ctx := t.Context()
	if err := s.ReplaceRecoveryCodes(ctx, "alice", [][]byte{[]byte("old")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Pool.Exec(ctx, `
		CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$;
		CREATE TRIGGER audit_down BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_down()`); err != nil {
		t.Fatal(err)
	}
	in := framework.RecoveryIssue{UserID: "alice", Hashes: [][]byte{[]byte("new")}, Now: time.Now(),
		Audit: framework.AuditEntry{Time: time.Now(), Event: framework.EventRecoveryIssued, UserID: "alice", Outcome: "issued"}}
	if ok, err := s.IssueRecoveryCodes(ctx, in); err == nil || ok {
		t.Fatalf("issue with the audit table refusing inserts: %v %v, want an error", ok, err)
	}
	has := func(h string) bool {
		ok, err := s.HasRecoveryCode(ctx, "alice", []byte(h))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !has("old") || has("new") {
		t.Errorf("after a failed issue: old code %v, new code %v; want the old set alone", has("old"), has("new"))
	}
	if _, err := s.pool.Pool.Exec(ctx, `DROP TRIGGER audit_down ON audit`); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IssueRecoveryCodes(ctx, in); err != nil || !ok {
		t.Fatalf("issue: %v %v", ok, err)
	}
	if has("old") || !has("new") {
		t.Errorf("after the issue: old code %v, new code %v; want the new set alone", has("old"), has("new"))
	}
	if list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"}); len(list) != 1 {
		t.Errorf("%d audit entries, want the issue's 1", len(list))
	}
}

// TestFirstRecoveryCodesOnceAcrossReplicas is the conformance suite's
// Recovery/FirstOnce with the first sets spread over two stores on one
// schema, as two replicas: one set is stored, whichever replica issues it.
func TestFirstRecoveryCodesOnceAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	storetest.FirstRecoveryCodesOnce(t, a, b)
}

// TestFirstCodesWithActivationAcrossReplicas is the conformance suite's
// Recovery/FirstCodesWithActivation on two stores sharing one database.
func TestFirstCodesWithActivationAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	storetest.FirstCodesWithActivation(t, a, b)
}

// TestResealRacesLoginsAcrossReplicas: the suite's
// ResealEnrollments/RacesLogins with the logins spread over two stores on
// one schema, as two replicas, and rekey's batch on the second: its row
// locks, taken in key order, never meet a decision batch's in a cycle.
func TestResealRacesLoginsAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	for range 10 {
		storetest.ResealRacesLogins(t, a, b)
		if t.Failed() {
			return
		}
	}
}
