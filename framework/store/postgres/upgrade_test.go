package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// schemaBefore fills a new schema with the migrations before the one whose
// name contains next, as the release before next wrote it, and returns its
// DSN and a connection to it.
func schemaBefore(t *testing.T, next string) (string, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.Schema(t)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.Contains(m.Name, next) {
			return dsn, conn
		}
		if _, err := conn.Exec(t.Context(), m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no migration named like %q", next)
	return "", nil
}

// TestUpgradeAttemptGate: a run of failures kept by the release before the
// attempt gate (one budget per user) is the factors' budget after it.
func TestUpgradeAttemptGate(t *testing.T) {
	dsn, conn := schemaBefore(t, "attempt_gate")
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := conn.Exec(t.Context(), `INSERT INTO attempts (user_id, failures, locked_until) VALUES ('alice', 7, $1), ('bob', 2, NULL)`, until); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dsn)
	defer s.Close()
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
	if _, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, until.Add(-time.Second), func(int) time.Time { return time.Time{} }); err != nil || ok {
		t.Errorf("reservation while locked after the upgrade: %v, %v", ok, err)
	}
	if _, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetRecovery, until, func(int) time.Time { return time.Time{} }); err != nil || !ok {
		t.Errorf("recovery budget after the upgrade: %v, %v", ok, err)
	}
}

// TestUpgradeChallengeResend: a push pending in the release before the
// challenge step reads back with no ResendAfter, so it is still answered,
// never replaced, by a new request.
func TestUpgradeChallengeResend(t *testing.T) {
	dsn, conn := schemaBefore(t, "challenge_resend")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO enrollments VALUES ('alice', 'duo', 'active', '\x01', 1, $1, $1, $1)`,
		`INSERT INTO transactions VALUES ('p1', 'alice', 'duo', 'client', 'duo-tx', $1::timestamptz, $1::timestamptz + interval '5 minutes')`,
	} {
		if _, err := conn.Exec(t.Context(), q, now); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := mustOpen(t, dsn)
	defer s.Close()
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

// TestUpgradeOrphanRecoveryCodes: as the SQLite store's.
func TestUpgradeOrphanRecoveryCodes(t *testing.T) {
	dsn, conn := schemaBefore(t, "orphan_recovery_codes")
	for _, q := range []string{
		`INSERT INTO enrollments VALUES ('alice', 'totp2', 'pending', '\x01', 1, now(), now(), NULL),
			('bob', 'totp', 'active', '\x01', 1, now(), now(), now()), ('bob', 'totp2', 'pending', '\x01', 1, now(), now(), NULL)`,
		`INSERT INTO recovery_codes (user_id, hash, created_at) VALUES
			('alice', '\xa1', now()), ('alice', '\xa2', now()), ('bob', '\xb1', now()), ('carol', '\xc1', now())`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := mustOpen(t, dsn)
	defer s.Close()
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
	dsn, conn := schemaBefore(t, "enrollment_factors")
	if _, err := conn.Exec(t.Context(), `INSERT INTO enrollments VALUES ('alice', 'totp2', 'pending', '\x01', 1, now(), now(), NULL),
		('bob', 'totp', 'active', '\x01', 1, now(), now(), now()), ('bob', 'totp2', 'pending', '\x01', 1, now(), now(), NULL)`); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dsn)
	defer s.Close()
	storetest.PendingFromEarlierRelease(t, s)
}

// TestUpgradeEnrollmentSignInCode: enrollments stored by the release
// before Enrollment.SignInCode have none, so their users are offered the
// provider's Info.CodeInput (storetest.SignInCodeFromEarlierRelease).
func TestUpgradeEnrollmentSignInCode(t *testing.T) {
	dsn, conn := schemaBefore(t, "enrollment_sign_in_code")
	if _, err := conn.Exec(t.Context(), `INSERT INTO enrollments VALUES ('alice', 'totp', 'active', '\x01', 1, now(), now(), now(), ''),
		('bob', 'totp', 'pending', '\x01', 1, now(), now(), NULL, '?')`); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dsn)
	defer s.Close()
	storetest.SignInCodeFromEarlierRelease(t, s)
}
