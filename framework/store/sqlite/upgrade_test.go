package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
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

// TestUpgradeAttemptGate: a run of failures kept by the release before the
// attempt gate (one budget per user) is the factors' budget after it.
func TestUpgradeAttemptGate(t *testing.T) {
	path := schemaBefore(t, "attempt_gate")
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// The previous release's init marked the store; its users failed.
	if _, err := db.Exec(`INSERT INTO install (id, install_id, created_at) VALUES (1, 'previous', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO attempts (user_id, failures, locked_until) VALUES ('alice', 7, ?), ('bob', 2, 0)`, until.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open of the previous release's store: %v", err)
	}
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
	// The gate works on the upgraded table: alice is still locked.
	if _, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, until.Add(-time.Second), func(int) time.Time { return time.Time{} }); err != nil || ok {
		t.Errorf("reservation while locked after the upgrade: %v, %v", ok, err)
	}
}
