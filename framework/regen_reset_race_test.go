package framework_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// resetBeforeIssue is a store whose next IssueRecoveryCodes runs hook
// first: an admin's reset that comes between a regeneration's check for a
// confirmed factor and the write of its new set.
type resetBeforeIssue struct {
	framework.Store
	hook atomic.Pointer[func()]
}

func (s *resetBeforeIssue) IssueRecoveryCodes(ctx context.Context, in framework.RecoveryIssue) (bool, error) {
	if h := s.hook.Swap(nil); h != nil {
		(*h)()
	}
	return s.Store.IssueRecoveryCodes(ctx, in)
}

// TestRegenerateRacingResetLeavesNoCodes: whoever holds alice's phone
// (and session) regenerates her recovery codes, stepping up with the
// phone, while the admin resets that factor (alice reported the phone
// lost). The regeneration checked for a confirmed factor before the reset
// and writes its set after the reset dropped alice's codes. The reset must
// still leave alice no codes: codes backing no factor are a way in held
// by the phone's finder, and they would back alice's next factor, which is
// then issued none of its own.
func TestRegenerateRacingResetLeavesNoCodes(t *testing.T) {
	store, path := openStore(t)
	wrapped := &resetBeforeIssue{Store: store}
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	e.fw = startFramework(t, wrapped, e.key, e.clk, 0, inProcess())

	old := e.enroll(t, "alice")
	ran := false
	hook := func() {
		ran = true
		if err := e.fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil {
			t.Errorf("ResetEnrollment: %v", err)
		}
	}
	wrapped.hook.Store(&hook)
	e.clk.Advance(period)
	res, stolen, err := e.fw.RegenerateRecoveryCodesStepUp(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp",
		Audience: framework.AudienceStaff, Code: codeAt(t, old, e.clk.Now())})
	if !ran {
		t.Fatal("the hook did not run: the test proved nothing")
	}
	t.Logf("the regeneration answered: %s/%s, %d codes, %v", res.Outcome, res.Reason, len(stolen), err)
	if n, _ := store.CountRecoveryCodes(t.Context(), "alice"); n != 0 {
		t.Errorf("%d recovery codes after the reset of alice's only factor, want 0", n)
	}

	// Alice enrolls her new phone: it is issued codes of its own, and the
	// finder's set does not let anyone in.
	e.clk.Advance(period)
	secret := e.begin(t, "alice")
	if got := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now())).RecoveryCodes; len(got) == 0 {
		t.Errorf("alice's new factor was issued no recovery codes (the finder's set backs it)")
	}
	if len(stolen) > 0 {
		if r, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
			Audience: framework.AudienceStaff, Code: stolen[0]}); err != nil || r.Outcome == sdk.Allow {
			t.Errorf("a code of the set regenerated during the reset: %s/%s, %v; want deny", r.Outcome, r.Reason, err)
		}
	}
}
