package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// TestLatePollCountsFraud: someone with the password starts a push, the
// user reports it as fraud, and the push's login polls only once the
// transaction has expired: the poll is told "expired" without the
// provider being asked, so the user's fraud report, made while the push
// was live, never locks the user. The attacker who waits out the five
// minutes before polling (or never polls) is never held back by it.
func TestLatePollCountsFraud(t *testing.T) {
	fw, prov, clk, store := newPushEnv(t, framework.PushLimit{})
	start, err := pushVerifyFor(fw, "attacker-login")
	if err != nil || start.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", start, err)
	}
	prov.answer(sdk.Deny, sdk.ReasonFraud)
	clk.Advance(6 * time.Minute)
	res, err := fw.PollVerification(context.Background(), "alice", start.TxID)
	if err != nil || res.Outcome != sdk.Deny {
		t.Fatalf("the late poll: %+v %v", res, err)
	}
	a, err := store.Attempts(context.Background(), "alice", framework.BudgetFactor)
	if err != nil {
		t.Fatal(err)
	}
	if !a.LockedUntil.After(clk.Now()) {
		t.Errorf("after a fraud report collected by a late poll (answered %s): %+v, want the user locked", res.Reason, a)
	}
	if _, err := pushVerifyFor(fw, "attacker-login"); framework.CodeOf(err) != framework.CodeLockedOut {
		t.Errorf("the attacker's next push after the fraud report: %v, want the lockout", err)
	}
}
