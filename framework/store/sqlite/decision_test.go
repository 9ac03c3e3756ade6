package sqlite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// TestBatchKeepsResetOrder: the resets of a batch are written a chunk at
// a time (resetUsers), yet a failure counted after a reset in the same
// batch survives it, and one counted before it does not, as when each
// decision ran its own statements in order.
func TestBatchKeepsResetOrder(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	const n = 70 // resets in chunks of 64, 4, 1, then 1
	user := func(i int) string { return fmt.Sprintf("user%02d", i) }
	for i := range n + 1 {
		if _, err := s.RecordFailure(ctx, user(i), framework.BudgetFactor, lockAt(100)); err != nil {
			t.Fatal(err)
		}
	}
	decision := func(w framework.DecisionWrite) decisionArgs {
		a, err := decisionToArgs(w)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	failure := func(u string) decisionArgs {
		r, ok, err := s.ReserveAttempt(ctx, u, framework.BudgetFactor, ledgerNow, lockAt(100))
		if err != nil || !ok {
			t.Fatalf("reserve %s: %v %v", u, ok, err)
		}
		return decision(framework.DecisionWrite{Failed: true,
			Settled: &framework.Refund{UserID: u, Budget: framework.BudgetFactor, Reservation: r}})
	}
	// user00..user68 reset, then a failure of user05 (reserved before
	// the batch, as every settled reservation is), then user69's failure
	// and then its reset; user70 is in no decision.
	var batch []decisionArgs
	late := failure(user(5))
	early := failure(user(n - 1))
	for i := range n - 1 {
		batch = append(batch, decision(framework.DecisionWrite{ResetUser: user(i)}))
	}
	batch = append(batch, late, early, decision(framework.DecisionWrite{ResetUser: user(n - 1)}))
	errs, err := s.writeDecisions(batch)
	if err = errors.Join(append(errs, err)...); err != nil {
		t.Fatal(err)
	}
	for i := range n + 1 {
		want := 0
		switch i {
		case 5, n: // counted after its reset; never reset
			want = 1
		}
		a, err := s.Attempts(ctx, user(i), framework.BudgetFactor)
		if err != nil {
			t.Fatal(err)
		}
		if a.Failures != want {
			t.Errorf("%s: %d failures, want %d", user(i), a.Failures, want)
		}
	}
}
