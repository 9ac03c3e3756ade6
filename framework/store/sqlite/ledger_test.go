package sqlite

import (
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var ledgerNow = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// lockAt locks from the nth failure on, for an hour.
func lockAt(n int) func(int) time.Time {
	return func(f int) time.Time {
		if f >= n {
			return ledgerNow.Add(time.Hour)
		}
		return time.Time{}
	}
}

func reserve(t *testing.T, s *Store, lock func(int) time.Time) framework.Reservation {
	t.Helper()
	r, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, ledgerNow, lock)
	if err != nil || !ok {
		t.Fatalf("reserve: %+v, %v, %v", r, ok, err)
	}
	return r
}

func settle(t *testing.T, s *Store, r framework.Reservation, failed bool) {
	t.Helper()
	ref := &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}
	w := framework.DecisionWrite{Settled: ref, Failed: failed}
	if !failed {
		w = framework.DecisionWrite{Refund: ref}
	}
	if err := s.CommitDecision(t.Context(), w); err != nil {
		t.Fatal(err)
	}
}

// TestLedgerOnDisk: a reservation is held in memory (ledger.go): a failed
// guess is written by its decision's commit and is on disk after a
// restart, a refunded one writes nothing, and one never settled (its
// decision never committed, so never answered) is gone with the process.
func TestLedgerOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	failed := reserve(t, s, lockAt(3))
	refunded := reserve(t, s, lockAt(3))
	held := reserve(t, s, lockAt(3))
	if held.Failures != 3 || !held.LockedUntil.Equal(ledgerNow.Add(time.Hour)) {
		t.Fatalf("third reservation: %+v, want the third failure and its lock", held)
	}
	if _, ok, _ := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, ledgerNow, lockAt(3)); ok {
		t.Fatal("a reservation got through the lock a held one set")
	}
	settle(t, s, failed, true)
	settle(t, s, refunded, false)
	if a, err := s.Attempts(t.Context(), "alice", framework.BudgetFactor); err != nil || a.Failures != 2 || !a.LockedUntil.Equal(held.LockedUntil) {
		t.Errorf("attempts with one failure stored and one held: %+v, %v", a, err)
	}
	var stored int
	if err := s.r.QueryRowContext(t.Context(), `SELECT failures FROM attempts WHERE user_id = 'alice'`).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("stored failures = %d, %v; want the failed guess alone", stored, err)
	}
	closeStore(t, s)

	s = mustOpen(t, path)
	defer closeStore(t, s)
	if a, err := s.Attempts(t.Context(), "alice", framework.BudgetFactor); err != nil || a.Failures != 1 || !a.LockedUntil.IsZero() {
		t.Errorf("after a restart: %+v, %v; want the failed guess, not the unanswered one", a, err)
	}
	// A success ends the run, held reservations included.
	r := reserve(t, s, lockAt(100))
	reserve(t, s, lockAt(100))
	ref := &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}
	if err := s.CommitDecision(t.Context(), framework.DecisionWrite{Settled: ref, ResetUser: "alice"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Attempts(t.Context(), "alice", framework.BudgetFactor); a != (framework.Attempts{}) {
		t.Errorf("after an allow: %+v", a)
	}
	if n := len(s.ledger.entries); n != 0 {
		t.Errorf("%d ledger entries left with nothing held", n)
	}
}

// TestLedgerSettleRaces: reservations of one budget racing with the
// commits that settle others count each failure exactly once: the n-th
// reservation sees n-1 failures, stored or held, never a failure twice
// (read from the file while still held) nor none (released before its
// commit is visible).
func TestLedgerSettleRaces(t *testing.T) {
	s := openTemp(t)
	defer closeStore(t, s)
	// Widen the window between a commit and its release: a reservation
	// that read the budget inside it would count that failure twice.
	testHookCommitted = func() { time.Sleep(200 * time.Microsecond) }
	defer func() { testHookCommitted = nil }()
	const workers, rounds = 16, 8
	never := func(int) time.Time { return time.Time{} }
	var mu sync.Mutex
	var seen []int
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				r, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, ledgerNow, never)
				if err != nil || !ok {
					t.Errorf("reserve: %v, %v", ok, err)
					return
				}
				mu.Lock()
				seen = append(seen, r.Failures)
				mu.Unlock()
				ref := &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}
				if err := s.CommitDecision(t.Context(), framework.DecisionWrite{Settled: ref, Failed: true}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(seen)
	for i, n := range seen {
		if n != i+1 {
			t.Fatalf("reservations saw failure counts %v; want 1 to %d, each once", seen, workers*rounds)
		}
	}
	if a, _ := s.Attempts(t.Context(), "alice", framework.BudgetFactor); a.Failures != workers*rounds {
		t.Errorf("failures = %d, want %d", a.Failures, workers*rounds)
	}
}

// TestReserveAttemptFor: the reservation with the enrollment read in the
// same statement: the enrollment as Get returns it (nil when there is
// none), counted like ReserveAttempt, and nothing while locked.
func TestReserveAttemptFor(t *testing.T) {
	s := openTemp(t)
	defer closeStore(t, s)
	ctx := t.Context()
	reserveFor := func(provider string) (framework.Reservation, bool, *framework.Enrollment) {
		t.Helper()
		r, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, provider, ledgerNow, lockAt(3))
		if err != nil {
			t.Fatal(err)
		}
		return r, ok, e
	}
	if r, ok, e := reserveFor("totp"); !ok || e != nil || r.Failures != 1 {
		t.Fatalf("no enrollment: %+v, %v, %+v", r, ok, e)
	}
	if _, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed")); err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(ctx, "alice", "totp")
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, e := reserveFor("totp"); !ok || e == nil || !reflect.DeepEqual(*e, want) || r.Failures != 2 {
		t.Fatalf("with an enrollment: %+v, %v, %+v; want %+v", r, ok, e, want)
	}
	if _, ok, e := reserveFor("duo"); !ok || e != nil {
		t.Fatalf("another provider: %v, %+v", ok, e)
	}
	if r, ok, e := reserveFor("totp"); ok || e != nil || !r.LockedUntil.Equal(ledgerNow.Add(time.Hour)) {
		t.Fatalf("while locked: %+v, %v, %+v", r, ok, e)
	}
}
