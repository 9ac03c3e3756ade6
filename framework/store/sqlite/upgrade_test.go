package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
)

// schemaBefore builds a database file with the migrations before the one
// whose name contains next, as the release before next wrote it.
func schemaBefore(t *testing.T, next string) string {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "twofactor.db")
	if err := createFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.Contains(m.Name, next) {
			return path
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no migration named like %q", next)
	return ""
}

// openUpgraded writes stmts (each given arg, which they may use as ?1)
// into a store with the schema of the release before next, then opens it
// with this release, which runs the migrations from next on.
func openUpgraded(t *testing.T, next string, arg any, stmts ...string) *Store {
	t.Helper()
	path := schemaBefore(t, next)
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q, arg); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open of the previous release's store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestUpgradeAttemptGate: a run of failures kept by the release before the
// attempt gate (one budget per user) is the factors' budget after it.
func TestUpgradeAttemptGate(t *testing.T) {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// The previous release's init marked the store; its users failed.
	s := openUpgraded(t, "attempt_gate", until.UnixNano(),
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO attempts (user_id, failures, locked_until) VALUES ('alice', 7, ?1), ('bob', 2, 0)`)
	got, err := s.Attempts(t.Context(), "alice", framework.BudgetFactor)
	if err != nil || got.Failures != 7 || !got.LockedUntil.Equal(until) {
		t.Errorf("alice after the upgrade: %+v, %v", got, err)
	}
	if got, _ := s.Attempts(t.Context(), "bob", framework.BudgetFactor); got.Failures != 2 || !got.LockedUntil.IsZero() {
		t.Errorf("bob after the upgrade: %+v", got)
	}
	if got, _ := s.Attempts(t.Context(), "alice", framework.BudgetRecovery); got != (framework.Attempts{}) {
		t.Errorf("alice's recovery budget after the upgrade: %+v", got)
	}
	// The gate works on the upgraded table: alice is still locked.
	if _, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, until.Add(-time.Second), func(int) time.Time { return time.Time{} }); err != nil || ok {
		t.Errorf("reservation while locked after the upgrade: %v, %v", ok, err)
	}
}

// TestUpgradeChallengeResend: a push pending in the release before the
// challenge step reads back with no ResendAfter, so it is still answered,
// never replaced, by a new request.
func TestUpgradeChallengeResend(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := openUpgraded(t, "challenge_resend", now.UnixNano(),
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO enrollments VALUES ('alice', 'duo', 'active', x'01', 1, 0, 0, 0)`,
		`INSERT INTO transactions VALUES ('p1', 'alice', 'duo', 'client', 'duo-tx', ?1, ?1 + 300000000000)`,
	)
	tx, err := s.GetTransaction(t.Context(), "alice", "p1")
	if err != nil || !tx.ResendAfter.IsZero() || tx.ProviderTxID != "duo-tx" {
		t.Fatalf("pending push after the upgrade: %+v, %v", tx, err)
	}
	next := framework.Transaction{ID: "p2", UserID: "alice", Provider: "duo", Audience: framework.AudienceClient,
		CreatedAt: now.Add(time.Minute), ExpiresAt: now.Add(2 * time.Minute)}
	r, err := s.ReservePush(t.Context(), next, now.Add(time.Minute), framework.DefaultPushLimit)
	if err != nil || r.Existing == nil || r.Existing.ID != "p1" {
		t.Errorf("push request after the upgrade: %+v, %v; want p1 answered", r, err)
	}
}

// TestUpgradeAuditUnindexed: the audit entries a release with the audit
// indexes wrote list as before (all, by user, since a time, by page) once
// the indexes are gone, and new entries append after them.
func TestUpgradeAuditUnindexed(t *testing.T) {
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := openUpgraded(t, "audit_unindexed", base.UnixNano(),
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details) VALUES
			(?1, 'verify', 'app', 'alice', 'totp', 'client', 'allow', '', '', '{}'),
			(?1 + 1000000000, 'verify', 'app', 'bob', 'totp', 'client', 'deny', 'invalid_code', '', '{"k":"v"}'),
			(?1 + 2000000000, 'verify', 'app', 'alice', 'totp', 'client', 'deny', 'replayed', '', '{}')`,
	)
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("audit indexes after the upgrade: %d, %v", n, err)
	}
	reasons := func(q framework.AuditQuery) string {
		t.Helper()
		list, err := s.ListAudit(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.UserID+":"+e.Outcome+"/"+e.Reason)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		q    framework.AuditQuery
		want string
	}{
		{framework.AuditQuery{}, "alice:allow/ bob:deny/invalid_code alice:deny/replayed"},
		{framework.AuditQuery{UserID: "alice"}, "alice:allow/ alice:deny/replayed"},
		{framework.AuditQuery{Since: base.Add(time.Second)}, "bob:deny/invalid_code alice:deny/replayed"},
		{framework.AuditQuery{AfterID: 1, Limit: 1}, "bob:deny/invalid_code"},
	} {
		if got := reasons(tc.q); got != tc.want {
			t.Errorf("ListAudit(%+v) = %q, want %q", tc.q, got, tc.want)
		}
	}
	if err := s.AppendAudit(t.Context(), framework.AuditEntry{Time: base.Add(3 * time.Second), Event: "verify", UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Outcome: "allow"}); err != nil {
		t.Fatal(err)
	}
	if got, want := reasons(framework.AuditQuery{UserID: "alice", AfterID: 3}), "alice:allow/"; got != want {
		t.Errorf("new entry: %q, want %q", got, want)
	}
}

// TestUpgradeOrphanRecoveryCodes: codes that an earlier release's reset
// left beside only a pending enrollment are dropped by the upgrade; codes
// backing an active factor stay, and so does the pending enrollment.
func TestUpgradeOrphanRecoveryCodes(t *testing.T) {
	s := openUpgraded(t, "orphan_recovery_codes", nil,
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO enrollments VALUES ('alice', 'totp2', 'pending', x'01', 1, 0, 0, NULL),
			('bob', 'totp', 'active', x'01', 1, 0, 0, 0), ('bob', 'totp2', 'pending', x'01', 1, 0, 0, NULL)`,
		`INSERT INTO recovery_codes (user_id, hash, created_at) VALUES
			('alice', x'a1', 0), ('alice', x'a2', 0), ('bob', x'b1', 0), ('carol', x'c1', 0)`,
	)
	for user, want := range map[string]int{"alice": 0, "bob": 1, "carol": 0} {
		if n, err := s.CountRecoveryCodes(t.Context(), user); err != nil || n != want {
			t.Errorf("%s's codes after the upgrade: %d %v, want %d", user, n, err, want)
		}
	}
	if e, err := s.Get(t.Context(), "alice", "totp2"); err != nil || e.Status != framework.StatusPending {
		t.Errorf("alice's pending enrollment after the upgrade: %+v %v", e, err)
	}
}

// TestUpgradeEnrollmentFactors: setups pending in the release before
// Enrollment.Factors record no factor (storetest.PendingFromEarlierRelease).
func TestUpgradeEnrollmentFactors(t *testing.T) {
	s := openUpgraded(t, "enrollment_factors", nil,
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO enrollments VALUES ('alice', 'totp2', 'pending', x'01', 1, 0, 0, NULL),
			('bob', 'totp', 'active', x'01', 1, 0, 0, 0), ('bob', 'totp2', 'pending', x'01', 1, 0, 0, NULL)`,
	)
	storetest.PendingFromEarlierRelease(t, s)
}

// TestUpgradeEnrollmentSignInCode: enrollments stored by the release
// before Enrollment.SignInCode have none, so their users are offered the
// provider's Info.CodeInput (storetest.SignInCodeFromEarlierRelease).
func TestUpgradeEnrollmentSignInCode(t *testing.T) {
	s := openUpgraded(t, "enrollment_sign_in_code", nil,
		`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`,
		`INSERT INTO enrollments VALUES ('alice', 'totp', 'active', x'01', 1, 0, 0, 0, ''),
			('bob', 'totp', 'pending', x'01', 1, 0, 0, NULL, '?')`,
	)
	storetest.SignInCodeFromEarlierRelease(t, s)
}
