package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
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

// TestUnpolledPushDenialCounts: someone with the password starts a push
// and never polls it; the user denies it, or reports it as fraud. The
// denial is the user's answer whether or not its login comes back for it:
// once the push's transaction has expired (5 minutes), the next start,
// even of the same login, must not be a fresh push as if nothing had been
// answered. A fraud report locks the user (the start is refused with the
// lockout, nothing sent); a denial counts as a failed attempt; each is
// audited once. Before, the decision was learnt only by a poll of the
// push's own txid (or a start of another login before it expired): the
// attacker stopped polling, waited for the expiry, and pushed again, as
// often as the push limit allowed, and neither the user's denials nor
// their fraud reports ever counted.
func TestUnpolledPushDenialCounts(t *testing.T) {
	for _, tt := range []struct {
		name   string
		reason sdk.Reason
	}{
		{"fraud", sdk.ReasonFraud},
		{"denied", sdk.ReasonDeniedByUser},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw, prov, clk, store := newPushEnv(t, framework.PushLimit{})
			first, err := pushVerifyFor(fw, "attacker-login")
			if err != nil || first.Outcome != sdk.Pending {
				t.Fatalf("the attacker's push: %+v %v", first, err)
			}
			prov.answer(sdk.Deny, tt.reason) // the user answers on the phone
			clk.Advance(6 * time.Minute)     // nobody polls; the transaction expires
			again, startErr := pushVerifyFor(fw, "attacker-login")

			a, aerr := store.Attempts(context.Background(), "alice", framework.BudgetFactor)
			if aerr != nil {
				t.Fatal(aerr)
			}
			if a.Failures != 1 {
				t.Errorf("after the user's %s of a push nobody polled: %d failures counted, want 1", tt.reason, a.Failures)
			}
			list, err := fw.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range list {
				if e.Event == framework.EventVerify && e.Outcome == string(sdk.Deny) && e.Reason == string(tt.reason) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d %s denials audited, want 1", n, tt.reason)
			}
			if tt.reason == sdk.ReasonDeniedByUser && (startErr != nil || again.Outcome != sdk.Pending || prov.sent != 2) {
				t.Errorf("the next start after a denial: %+v %v, %d sent; want a new push", again, startErr, prov.sent)
			}
			if tt.reason == sdk.ReasonFraud {
				if framework.CodeOf(startErr) != framework.CodeLockedOut || framework.IsSendLimit(startErr) || framework.IsPushPending(startErr) {
					t.Errorf("the next start after a fraud report: %+v %v, want the lockout", again, startErr)
				}
				if prov.sent != 1 {
					t.Errorf("%d pushes sent after a fraud report, want 1 (no new push to a user who reported the last one)", prov.sent)
				}
			}
		})
	}
}

// TestUnpolledFraudCountedOnceAcrossReplicas: after a fraud report on a
// push nobody polled, a burst of starts of that login spread over two
// replicas sharing PostgreSQL records the report once (one start's
// settle deletes the expired push, with the report and its lockout) and
// every start answers the lockout: no new push is sent
// (TestNoPushWhileUnpolledFraudSettles holds a settle open meanwhile).
func TestUnpolledFraudCountedOnceAcrossReplicas(t *testing.T) {
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	clk := newClock()
	fws := pushReplicasAt(t, prov, clk)
	if first, err := pushVerifyFor(fws[0], "attacker-login"); err != nil || first.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", first, err)
	}
	prov.answer(sdk.Deny, sdk.ReasonFraud)
	clk.Advance(6 * time.Minute)
	got := burst.Count(pollBurst, func(i int) string {
		res, err := pushVerifyFor(fws[i%2], "attacker-login")
		if err != nil {
			return string(framework.CodeOf(err))
		}
		return string(res.Outcome)
	})
	if got[string(framework.CodeLockedOut)] != pollBurst {
		t.Errorf("%d starts after an unpolled fraud report: %v, want every one locked_out", pollBurst, got)
	}
	if prov.sent != 1 {
		t.Errorf("%d pushes sent, want 1 (the attacker's; none after the fraud report)", prov.sent)
	}
	if _, err := pushVerifyFor(fws[1], "attacker-login"); framework.CodeOf(err) != framework.CodeLockedOut {
		t.Errorf("a start after the burst: %v, want the lockout", err)
	}
	wantFraudReports(t, fws[1], "alice", 1)
}

// wantFraudReports fails the test unless fw's audit holds want fraud
// reports of user (verify entries with reason fraud).
func wantFraudReports(t *testing.T, fw *framework.Framework, user string, want int) {
	t.Helper()
	list, err := fw.Audit(t.Context(), framework.AuditQuery{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list {
		if e.Event == framework.EventVerify && e.Reason == string(sdk.ReasonFraud) {
			n++
		}
	}
	if n != want {
		t.Errorf("%d fraud reports audited, want %d", n, want)
	}
}
