package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// lockFrom locks from the nth failure on, for n minutes past base.
func lockFrom(n int) func(int) time.Time {
	return func(f int) time.Time {
		if f >= n {
			return at(time.Duration(f) * time.Minute)
		}
		return time.Time{}
	}
}

func testAttemptsCountAndLock(t *testing.T, s framework.Store) {
	ctx := t.Context()
	if got, err := s.Attempts(ctx, "alice", framework.BudgetFactor); err != nil || got != (framework.Attempts{}) {
		t.Fatalf("fresh user: %+v, %v", got, err)
	}
	for i := 1; i <= 3; i++ {
		got, err := s.RecordFailure(ctx, "alice", framework.BudgetFactor, lockFrom(3))
		if err != nil || got.Failures != i {
			t.Fatalf("failure %d: %+v, %v", i, got, err)
		}
	}
	got, _ := s.Attempts(ctx, "alice", framework.BudgetFactor)
	if got.Failures != 3 || timeDiff(got.LockedUntil, at(3*time.Minute)) != "" {
		t.Errorf("after 3 failures: %+v", got)
	}
	// RecordFailure never shortens a lock.
	got, err := s.RecordFailure(ctx, "alice", framework.BudgetFactor, func(int) time.Time { return at(time.Minute) })
	if err != nil || got.Failures != 4 || timeDiff(got.LockedUntil, at(3*time.Minute)) != "" {
		t.Errorf("a shorter lock replaced a longer one: %+v, %v", got, err)
	}
	if other, _ := s.Attempts(ctx, "bob", framework.BudgetFactor); other.Failures != 0 {
		t.Errorf("bob has alice's failures: %+v", other)
	}
	if rec, _ := s.Attempts(ctx, "alice", framework.BudgetRecovery); rec.Failures != 0 {
		t.Errorf("the recovery budget has the factors' failures: %+v", rec)
	}
	if _, err := s.RecordFailure(ctx, "alice", framework.BudgetRecovery, lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetAttempts(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []framework.Budget{framework.BudgetFactor, framework.BudgetRecovery} {
		if got, _ := s.Attempts(ctx, "alice", b); got != (framework.Attempts{}) {
			t.Errorf("after reset, %s: %+v", b, got)
		}
	}
}

// testAttemptsConcurrent: failures recorded at once are all counted, as two
// replicas would record them.
func testAttemptsConcurrent(t *testing.T, s framework.Store) {
	_, errs := burst.Run2(concurrency, func(int) (framework.Attempts, error) {
		return s.RecordFailure(t.Context(), "alice", framework.BudgetFactor, func(int) time.Time { return time.Time{} })
	})
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got, _ := s.Attempts(t.Context(), "alice", framework.BudgetFactor); got.Failures != concurrency {
		t.Errorf("failures = %d, want %d", got.Failures, concurrency)
	}
}

// testReserveGate: the gate lets through exactly as many attempts as the
// budget leaves free, however many arrive at once.
func testReserveGate(t *testing.T, s framework.Store) {
	const free = 5
	now := at(0)
	through := burst.Count(4*concurrency, func(int) bool {
		_, ok, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, now, lockFrom(free))
		if err != nil {
			t.Error(err)
		}
		return ok
	})
	if through[true] != free {
		t.Errorf("%d of %d simultaneous reservations got through, want %d", through[true], 4*concurrency, free)
	}
	got, _ := s.Attempts(t.Context(), "alice", framework.BudgetFactor)
	if got.Failures != free || timeDiff(got.LockedUntil, at(free*time.Minute)) != "" {
		t.Errorf("budget after the burst: %+v", got)
	}
	// Refused reservations say until when.
	r, reserved, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, now, lockFrom(free))
	if err != nil || reserved || timeDiff(r.LockedUntil, at(free*time.Minute)) != "" {
		t.Errorf("reservation while locked: %+v, %v, %v", r, reserved, err)
	}
	// Once the lock has passed, one more gets through, and starts the next.
	r, reserved, err = s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, at(free*time.Minute), lockFrom(free))
	if err != nil || !reserved || r.Failures != free+1 || timeDiff(r.PrevLockedUntil, at(free*time.Minute)) != "" {
		t.Errorf("reservation after the lock: %+v, %v, %v", r, reserved, err)
	}
	// Another budget of the same user is not touched.
	if _, reserved, err := s.ReserveAttempt(t.Context(), "alice", framework.BudgetRecovery, now, lockFrom(free)); err != nil || !reserved {
		t.Errorf("recovery budget: %v, %v", reserved, err)
	}
}

// testRefund: a refund gives the count back, and the lock the reservation
// set, but leaves a lock someone else set since.
func testRefund(t *testing.T, s framework.Store) {
	ctx := t.Context()
	for range 2 {
		if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(3)); err != nil {
			t.Fatal(err)
		}
	}
	r, ok, err := s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(3))
	if err != nil || !ok || r.LockedUntil.IsZero() {
		t.Fatalf("third reservation: %+v, %v, %v", r, ok, err)
	}
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Refund: &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); got.Failures != 2 || !got.LockedUntil.IsZero() {
		t.Errorf("after the refund: %+v, want 2 failures and no lock", got)
	}
	// A lock set by another attempt in between stays.
	r, _, _ = s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(3))
	if _, err := s.RecordFailure(ctx, "alice", framework.BudgetFactor, func(int) time.Time { return at(time.Hour) }); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Refund: &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); got.Failures != 3 || timeDiff(got.LockedUntil, at(time.Hour)) != "" {
		t.Errorf("after a refund over another's lock: %+v", got)
	}
	// A refund after a reset changes nothing and never goes below zero.
	if err := s.ResetAttempts(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Refund: &framework.Refund{UserID: "alice", Budget: framework.BudgetFactor, Reservation: r}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); got.Failures != 0 {
		t.Errorf("refund after reset: %+v", got)
	}
}

// testReservePushBurst: of a burst of push requests for one user and
// provider, one inserts its transaction and every other finds it.
func testReservePushBurst(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	limit := framework.PushLimit{Max: 3, Window: 10 * time.Minute}
	got := burst.Count(concurrency, func(i int) string {
		tx := newTx(fmt.Sprintf("tx%d", i), "alice", "duo")
		tx.ProviderTxID = ""
		r, err := s.ReservePush(t.Context(), tx, at(0), limit)
		switch {
		case err != nil:
			t.Error(err)
			return "error"
		case r.Existing != nil:
			return "existing"
		case r.RetryAt.IsZero():
			return "inserted"
		}
		return "refused"
	})
	if got["inserted"] != 1 || got["existing"] != concurrency-1 {
		t.Errorf("inserted %d, found pending %d; want 1 and %d", got["inserted"], got["existing"], concurrency-1)
	}
}

// testReservePushLimit: at most Max pushes per window, then RetryAt; a
// pushed transaction that ended frees the one pending slot; the window
// restarts once passed.
func testReservePushLimit(t *testing.T, s framework.Store) {
	ctx := t.Context()
	active(t, s, "alice", "duo")
	limit := framework.PushLimit{Max: 2, Window: 10 * time.Minute}
	push := func(id string, now time.Time) framework.PushReservation {
		t.Helper()
		tx := newTx(id, "alice", "duo")
		tx.ProviderTxID, tx.CreatedAt, tx.ExpiresAt = "", now, now.Add(time.Minute)
		r, err := s.ReservePush(ctx, tx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := push("p1", at(0)); r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("first push: %+v", r)
	}
	if err := s.SendTransaction(ctx, "p1", "duo-tx", at(5*time.Minute), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := push("p2", at(time.Minute)); r.Existing == nil || r.Existing.ID != "p1" || r.Existing.ProviderTxID != "duo-tx" {
		t.Fatalf("second push while the first is pending: %+v", r)
	}
	if err := s.DeleteTransaction(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if r := push("p3", at(2*time.Minute)); r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("push after the first ended: %+v", r)
	}
	// p3 expires unsent at 3m: no longer pending, but still counted.
	r := push("p4", at(4*time.Minute))
	if r.Existing != nil || timeDiff(r.RetryAt, at(10*time.Minute)) != "" {
		t.Fatalf("third push in the window: %+v, want RetryAt at the window's end", r)
	}
	if r := push("p5", at(10*time.Minute)); r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("push in a new window: %+v", r)
	}
	if err := s.SendTransaction(ctx, "gone", "x", at(time.Hour), time.Time{}); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("SendTransaction of a missing transaction = %v, want ErrNotFound", err)
	}
	tx := newTx("p6", "bob", "duo")
	if _, err := s.ReservePush(ctx, tx, at(0), limit); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("ReservePush without an enrollment = %v, want ErrNotFound", err)
	}
}

// testReserveRacesReset: reservations racing with resets (an allow on
// another replica) never fail: a reset that deletes the budget's row
// between a reservation's steps must not leave it with nothing to lock.
func testReserveRacesReset(t *testing.T, s framework.Store) {
	burst.Run(concurrency, func(i int) error {
		for range 10 {
			var err error
			if i%2 == 0 {
				_, _, err = s.ReserveAttempt(t.Context(), "alice", framework.BudgetFactor, at(0), lockFrom(1000))
			} else {
				err = s.ResetAttempts(t.Context(), "alice")
			}
			if err != nil {
				t.Error(err)
				return err
			}
		}
		return nil
	})
}

// testCancelPush: a push cancelled before it was sent frees the pending
// slot and its count in the window; cancelling twice gives back one.
func testCancelPush(t *testing.T, s framework.Store) {
	ctx := t.Context()
	active(t, s, "alice", "duo")
	limit := framework.PushLimit{Max: 1, Window: 10 * time.Minute}
	tx := newTx("c1", "alice", "duo")
	tx.ProviderTxID = ""
	if r, err := s.ReservePush(ctx, tx, at(0), limit); err != nil || r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("first push: %+v, %v", r, err)
	}
	for range 2 {
		if err := s.CancelPush(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	tx2 := newTx("c2", "alice", "duo")
	if r, err := s.ReservePush(ctx, tx2, at(time.Minute), limit); err != nil || r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("push after a cancelled one, with a limit of 1: %+v, %v", r, err)
	}
	tx3 := newTx("c3", "alice", "duo")
	tx3.Audience = framework.AudienceClient
	if r, err := s.ReservePush(ctx, tx3, at(2*time.Minute), limit); err != nil || r.RetryAt.IsZero() {
		t.Fatalf("a second push in the window (another audience): %+v, %v; want the limit", r, err)
	}
}

// testCommitDecision: a decision's state, audit entries and settlement are
// written together; a stale version writes nothing of it, and concurrent
// decisions (one group-committed batch) each get their own answer.
func testCommitDecision(t *testing.T, s framework.Store) {
	ctx := t.Context()
	e := active(t, s, "alice", "totp")
	if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	entry := framework.AuditEntry{Time: base, Event: framework.EventVerify, UserID: "alice", Provider: "totp", Outcome: "allow"}
	stale := e
	upd := e
	upd.State, upd.UpdatedAt = []byte("used step 42"), at(time.Minute)
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &upd, Audit: []framework.AuditEntry{entry}, ResetUser: "alice"}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "alice", "totp")
	if string(got.State) != "used step 42" || got.Version != e.Version+1 {
		t.Errorf("state after the decision: %q v%d", got.State, got.Version)
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); a != (framework.Attempts{}) {
		t.Errorf("budget after an allow: %+v", a)
	}
	// The same version again: a conflict, and nothing of it is written.
	if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	stale.State = []byte("second use")
	err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &stale, Audit: []framework.AuditEntry{entry}, ResetUser: "alice"})
	wantErr(t, "CommitDecision on a stale version", err, framework.ErrConflict)
	if got, _ := s.Get(ctx, "alice", "totp"); string(got.State) != "used step 42" {
		t.Errorf("a stale decision wrote its state: %q", got.State)
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("a stale decision settled its attempt: %+v", a)
	}
	list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
	if len(list) != 1 {
		t.Errorf("%d audit entries, want 1: the stale decision's is not written", len(list))
	}
	// Concurrent decisions on one version: exactly one wins.
	cur, _ := s.Get(ctx, "alice", "totp")
	wins := burst.Count(concurrency, func(i int) bool {
		u := cur
		u.State = []byte(fmt.Sprintf("use %d", i))
		err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &u, Audit: []framework.AuditEntry{entry}})
		if err != nil && !errors.Is(err, framework.ErrConflict) {
			t.Error(err)
		}
		return err == nil
	})
	if wins[true] != 1 {
		t.Errorf("%d of %d concurrent decisions on one version won, want 1", wins[true], concurrency)
	}
	if list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"}); len(list) != 2 {
		t.Errorf("%d audit entries after the race, want 2", len(list))
	}
}
