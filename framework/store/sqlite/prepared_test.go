package sqlite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// TestPreparedStatements: the hot statements are prepared once and then
// reused, whatever the number of calls; the cache stops at its bound and
// queries beyond it still work, unprepared; Close closes what it holds.
func TestPreparedStatements(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	if _, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "s")); err != nil {
		t.Fatal(err)
	}
	before := -1
	for i := range 50 {
		if i == 1 {
			before = len(s.r.stmts)
		}
		if _, err := s.Get(ctx, "alice", "totp"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Attempts(ctx, "alice", framework.BudgetFactor); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "bob", "totp"); !errors.Is(err, framework.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if n := len(s.r.stmts); n != before || n == 0 {
		t.Errorf("reader holds %d prepared statements after 100 more calls of the same queries, %d after the first", n, before)
	}

	for i := range maxPrepared + 10 {
		var n int
		if err := s.r.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n); err != nil || n != i {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	if n := len(s.r.stmts); n != maxPrepared {
		t.Errorf("cache holds %d statements, want the bound %d", n, maxPrepared)
	}
	if _, err := s.r.ExecContext(ctx, "SELEC 1"); err == nil {
		t.Error("a malformed statement did not fail")
	}
	if err := s.r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.r.stmts); n != 0 {
		t.Errorf("%d statements left after Close", n)
	}
}
