package framework_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// resetBeforeCommit is a store whose next decision that writes an
// enrollment's state runs hook first: what another request (an admin's
// reset, the user's new enrollment) does between the decision's read of
// the enrollment and its compare-and-swap.
type resetBeforeCommit struct {
	framework.Store
	hook atomic.Pointer[func()]
}

func (s *resetBeforeCommit) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	if d.Update != nil {
		if h := s.hook.Swap(nil); h != nil {
			(*h)()
		}
	}
	return s.Store.CommitDecision(ctx, d)
}

// TestResetThenReenrollNotUndoneByStaleDecision: a verify with the old
// factor (the lost phone, in its finder's hands) reads alice's enrollment
// at version 2 (begun, confirmed); before its compare-and-swap commits, an
// admin resets the factor and alice enrolls her new phone, which again
// reaches version 2. The stale decision must then find the enrollment
// changed (it is another one) and write nothing: the reset removed the old
// factor, and the new one is alice's. A version that starts again at 1
// after a delete lets the old decision's write land on the new row: the
// lost phone's secret is back, alice's new phone no longer works.
func TestResetThenReenrollNotUndoneByStaleDecision(t *testing.T) {
	store, _ := openStore(t)
	staleDecisionAfterReenroll(t, store, store)
}

// TestResetThenReenrollNotUndoneByStaleDecisionAcrossReplicas: the stale
// verify on one replica, the reset and the new enrollment on another, on
// one PostgreSQL database.
func TestResetThenReenrollNotUndoneByStaleDecisionAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	staleDecisionAfterReenroll(t, stores[0], stores[1])
}

// staleDecisionAfterReenroll verifies on a framework over verifier, and
// resets and enrolls again on one over admin (the same database).
func staleDecisionAfterReenroll(t *testing.T, verifier, admin framework.Store) {
	wrapped := &resetBeforeCommit{Store: verifier}
	clk, key := newClock(), newKey(t)
	e := &env{clk: clk, key: key, fw: startFramework(t, wrapped, key, clk, 0, inProcess())}
	other := &env{clk: clk, key: key, fw: e.fw}
	if admin != verifier {
		other.fw = startFramework(t, admin, key, clk, 0, inProcess())
	}

	oldSecret := e.enroll(t, "alice")
	var newSecret string
	hook := func() {
		if err := other.fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil {
			t.Errorf("ResetEnrollment: %v", err)
			return
		}
		e.clk.Advance(period)
		newSecret = other.enroll(t, "alice")
	}
	wrapped.hook.Store(&hook)
	e.clk.Advance(period) // past the step the confirmation used

	// The finder of the lost phone answers with its code.
	res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp",
		Audience: framework.AudienceStaff, Code: codeAt(t, oldSecret, e.clk.Now())})
	if newSecret == "" {
		t.Fatal("the hook did not run: the test proved nothing")
	}
	t.Logf("the stale verify answered: %s/%s, %v", res.Outcome, res.Reason, err)

	e.clk.Advance(period)
	now := e.clk.Now()
	if res := e.verify(t, "alice", codeAt(t, newSecret, now)); res.Outcome != sdk.Allow {
		t.Errorf("alice's new phone after the reset: %s/%s; want allow (her new factor was lost)", res.Outcome, res.Reason)
	}
	e.clk.Advance(period)
	if res := e.verify(t, "alice", codeAt(t, oldSecret, e.clk.Now())); res.Outcome == sdk.Allow {
		t.Errorf("the lost phone after the reset and a new enrollment: allow; want deny (the reset was undone)")
	}
}
