package framework_test

import (
	"context"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// TestUndeclaredFactorRefusedBeforeTheGate: a burst of verifies naming a
// factor the provider does not declare is refused as invalid_request
// without reaching the provider or touching the user's budget.
func TestUndeclaredFactorRefusedBeforeTheGate(t *testing.T) {
	fw, prov, _, store := newPushEnv(t, framework.PushLimit{})
	got := burst.Count(20, func(int) string {
		res, err := fw.Verify(context.Background(), framework.VerifyInput{UserID: "alice", Provider: "push",
			Audience: framework.AudienceStaff, Factor: "sms", Code: "123456"})
		return verdict(res, err)
	})
	if got["error:"+string(framework.CodeInvalidRequest)] != 20 {
		t.Errorf("answers to an undeclared factor: %v, want 20 invalid_request", got)
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	if prov.sent != 0 || len(prov.polled) != 0 {
		t.Errorf("the provider was called: %d sent, %d polled", prov.sent, len(prov.polled))
	}
	if a, err := store.Attempts(context.Background(), "alice", framework.BudgetFactor); err != nil || a.Failures != 0 {
		t.Errorf("attempts after refused factors: %+v, %v", a, err)
	}
}

// TestPolledReasonOutsideTheRule: a push polled to a deny whose reason is
// outside the SDK's rule (here a reason only the host gives, which would
// be given back) is answered as invalid_reason and counted.
func TestPolledReasonOutsideTheRule(t *testing.T) {
	fw, prov, _, store := newPushEnv(t, framework.PushLimit{})
	res, err := pushVerify(fw)
	if err != nil || res.Outcome != sdk.Pending {
		t.Fatalf("push: %+v, %v", res, err)
	}
	prov.mu.Lock()
	prov.answers["duo-tx-alice"], prov.reasons["duo-tx-alice"] = sdk.Deny, sdk.ReasonNotEnrolled
	prov.mu.Unlock()
	got, err := fw.PollVerification(context.Background(), "alice", res.TxID)
	if err != nil || got.Outcome != sdk.Deny || got.Reason != sdk.ReasonInvalidReason || got.Details[framework.DetailProviderReason] != "not_enrolled" {
		t.Fatalf("poll: %+v, %v; want deny %s with the provider's reason in the details", got, err, sdk.ReasonInvalidReason)
	}
	if a, _ := store.Attempts(context.Background(), "alice", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("a rule-breaking deny was not counted: %+v", a)
	}
}
