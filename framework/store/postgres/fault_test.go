package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/pgtest"
)

func TestUnavailableClassifies(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"terminated by an admin", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"lock timeout", &pgconn.PgError{Code: "55P03"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, true},
		{"I/O error", &pgconn.PgError{Code: "58030"}, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"not found", framework.ErrNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errors.Is(unavailable(tc.err), framework.ErrStoreUnavailable)
			if got != tc.want {
				t.Fatalf("unavailable(%v) is store unavailable: %v, want %v", tc.err, got, tc.want)
			}
			if !errors.Is(unavailable(tc.err), tc.err) {
				t.Fatal("the cause is lost")
			}
		})
	}
}

// openNamed opens a fresh store whose sessions carry a unique
// application_name, so a test can find (and terminate) exactly them.
func openNamed(t *testing.T) (*Store, string, *pgx.Conn) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "tf_fault_" + hex.EncodeToString(b)
	dsn := pgtest.WithParam(t, pgtest.Schema(t), "application_name", name)
	s := mustOpen(t, dsn)
	t.Cleanup(func() { s.Close() })
	admin, err := pgx.Connect(t.Context(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return s, name, admin
}

func terminate(t *testing.T, admin *pgx.Conn, name string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTerminatedConnections: every backend of the store terminated by the
// server (pg_terminate_backend, as a failover or PgBouncer restart does)
// while the pool holds them. Reads go on transparently (retried once on a
// new connection); a write either succeeds or answers ErrStoreUnavailable,
// never another error, and is never applied twice.
func TestTerminatedConnections(t *testing.T) {
	s, name, admin := openNamed(t)
	ctx := t.Context()
	now := time.Now().UTC()
	e, err := s.PutPending(ctx, framework.Enrollment{UserID: "alice", Provider: "totp", State: []byte{1}, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		// Fill the pool with several idle connections, then kill them all.
		errc := make(chan error, 8)
		for range 8 {
			go func() { _, err := s.Get(ctx, "alice", "totp"); errc <- err }()
		}
		for range 8 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if n := terminate(t, admin, name); n == 0 {
			t.Fatalf("round %d: no backend of %s to terminate", round, name)
		}
		for i := range 8 {
			if _, err := s.Get(ctx, "alice", "totp"); err != nil {
				t.Fatalf("round %d: read %d after termination: %v", round, i, err)
			}
		}
		terminate(t, admin, name)
		e.UpdatedAt = time.Now().UTC()
		got, err := s.Update(ctx, e)
		switch {
		case err == nil:
			e = got
		case errors.Is(err, framework.ErrStoreUnavailable):
			// May or may not have committed; the stored version says.
			cur, gerr := s.Get(ctx, "alice", "totp")
			if gerr != nil {
				t.Fatal(gerr)
			}
			if cur.Version != e.Version && cur.Version != e.Version+1 {
				t.Fatalf("version %d after one update of %d", cur.Version, e.Version)
			}
			e = cur
		default:
			t.Fatalf("round %d: update after termination: %v (not store unavailable)", round, err)
		}
	}
}

// TestExternalLockBounded: a session holding an exclusive lock on the
// enrollments table (a backup tool's LOCK TABLE) makes a request wait at
// most lock_timeout, then answer ErrStoreUnavailable, instead of stalling
// for the whole lock.
func TestExternalLockBounded(t *testing.T) {
	s, _, admin := openNamed(t)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	// The store's schema is on its own search_path; find it by name.
	var schema string
	if err := s.pool.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE `+pgx.Identifier{schema, "enrollments"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Get(t.Context(), "alice", "totp")
	took := time.Since(start)
	if !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("Get under an external lock: %v, want ErrStoreUnavailable", err)
	}
	if took > lockTimeout+2*time.Second {
		t.Fatalf("Get waited %v under the lock; the bound is %v", took, lockTimeout)
	}
	t.Logf("answered store unavailable after %v", took.Round(time.Millisecond))
}

// TestTerminatedConnectionsUnderLogins: the store's backends terminated
// while the pool holds them, before a login's reservation and again
// before its decision. The reservation goes on (sent again on a new
// connection); the decision either commits or answers
// ErrStoreUnavailable, never another error, and is never applied twice;
// the next decision commits.
func TestTerminatedConnectionsUnderLogins(t *testing.T) {
	s, name, admin := openNamed(t)
	ctx := t.Context()
	if _, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed")); err != nil {
		t.Fatal(err)
	}
	fill := func() {
		errc := make(chan error, 8)
		for range 8 {
			go func() { _, err := s.Get(ctx, "alice", "totp"); errc <- err }()
		}
		for range 8 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	lock := func(int) time.Time { return time.Time{} }
	for round := range 5 {
		fill()
		if n := terminate(t, admin, name); n == 0 {
			t.Fatalf("round %d: no backend of %s to terminate", round, name)
		}
		_, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", time.Now(), lock)
		if err != nil || !ok || e == nil {
			t.Fatalf("round %d: reservation after termination: %v, %v, %v", round, ok, e, err)
		}
		fill()
		terminate(t, admin, name)
		u := *e
		u.State, u.UpdatedAt = []byte{byte(round)}, time.Now()
		d := framework.DecisionWrite{Update: &u, ResetUser: "alice",
			Audit: []framework.AuditEntry{{Time: time.Now(), Event: framework.EventVerify, UserID: "alice", Outcome: "allow"}}}
		err = s.CommitDecision(ctx, d)
		if err != nil && !errors.Is(err, framework.ErrStoreUnavailable) {
			t.Fatalf("round %d: decision after termination: %v (not store unavailable)", round, err)
		}
		cur, gerr := s.Get(ctx, "alice", "totp")
		if gerr != nil {
			t.Fatal(gerr)
		}
		switch {
		case cur.Version == e.Version+1 && cur.State[0] == byte(round):
		case cur.Version == e.Version && err != nil:
			// Not committed: the next decision on the same version does.
			if err := s.CommitDecision(ctx, d); err != nil {
				t.Fatalf("round %d: decision on a fresh connection: %v", round, err)
			}
		default:
			t.Fatalf("round %d: version %d after one decision over %d (error %v)", round, cur.Version, e.Version, err)
		}
	}
	if a, err := s.Attempts(ctx, "alice", framework.BudgetFactor); err != nil || a != (framework.Attempts{}) {
		t.Errorf("budget after the logins: %+v, %v", a, err)
	}
}
