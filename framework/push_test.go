package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

func newPushEnv(t *testing.T, limit framework.PushLimit) (*framework.Framework, *pushProvider, *clock, framework.Store) {
	t.Helper()
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	store, _ := openStore(t)
	clk := newClock()
	fw, err := framework.New(t.Context(), framework.Options{
		Store: store, EncryptionKey: newKey(t), Now: clk.Now, PushLimit: limit,
		Providers: []framework.ProviderSpec{{Name: "push", Staff: true, Impl: prov}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	if _, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	return fw, prov, clk, store
}

func pushVerify(fw *framework.Framework) (framework.VerifyResult, error) {
	return fw.Verify(context.Background(), framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, Factor: "push"})
}

// TestPushBomb: twenty push requests at once for one user send one push;
// every request answers the same transaction.
func TestPushBomb(t *testing.T) {
	fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
	txids := map[string]bool{}
	got := burst.Count(20, func(int) string {
		res, err := pushVerify(fw)
		if err == nil && res.Outcome == sdk.Pending {
			prov.mu.Lock()
			txids[res.TxID] = true
			prov.mu.Unlock()
		}
		return verdict(res, err)
	})
	if got["pending:waiting"] != 20 {
		t.Errorf("answers to a push bomb: %v, want every one pending", got)
	}
	if prov.sent != 1 || len(txids) != 1 {
		t.Errorf("%d pushes sent, %d transaction ids answered; want 1 and 1", prov.sent, len(txids))
	}
}

// TestPushLimit: at most Max pushes per window; a denied push counts as a
// failure, a fraud report locks at once; the window restarts.
func TestPushLimit(t *testing.T) {
	fw, prov, clk, store := newPushEnv(t, framework.PushLimit{Max: 2, Window: 10 * time.Minute})
	deny := func(reason sdk.Reason) {
		t.Helper()
		res, err := pushVerify(fw)
		if err != nil || res.Outcome != sdk.Pending {
			t.Fatalf("push: %+v, %v", res, err)
		}
		prov.mu.Lock()
		prov.answers["duo-tx-alice"], prov.reasons["duo-tx-alice"] = sdk.Deny, reason
		prov.mu.Unlock()
		if res, err := fw.PollVerification(context.Background(), "alice", res.TxID); err != nil || res.Outcome != sdk.Deny || res.Reason != reason {
			t.Fatalf("poll: %+v, %v", res, err)
		}
		prov.mu.Lock()
		delete(prov.answers, "duo-tx-alice")
		prov.mu.Unlock()
	}
	deny(sdk.ReasonDeniedByUser)
	if a, _ := store.Attempts(context.Background(), "alice", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("a denied push was not counted: %+v", a)
	}
	deny(sdk.ReasonTimeout)
	if a, _ := store.Attempts(context.Background(), "alice", framework.BudgetFactor); a.Failures != 2 {
		t.Errorf("a timed-out push was not counted: %+v", a)
	}
	_, err := pushVerify(fw)
	wantCode(t, err, framework.CodeLockedOut)
	if ra := asError(err).RetryAfter; ra <= 0 || ra > 10*time.Minute {
		t.Errorf("RetryAfter = %v", ra)
	}
	if prov.sent != 2 {
		t.Errorf("%d pushes sent, want 2", prov.sent)
	}
	list, _ := fw.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
	if last := list[len(list)-1]; last.Reason != string(framework.ReasonPushLimit) {
		t.Errorf("last audit entry = %+v, want the push limit", last)
	}
	clk.Advance(10 * time.Minute)
	deny(sdk.ReasonFraud)
	a, _ := store.Attempts(context.Background(), "alice", framework.BudgetFactor)
	if !a.LockedUntil.After(clk.Now().Add(framework.DefaultLockoutPolicy.MaxBackoff - time.Second)) {
		t.Errorf("a fraud report did not lock: %+v", a)
	}
	_, err = pushVerify(fw)
	wantCode(t, err, framework.CodeLockedOut)
}
