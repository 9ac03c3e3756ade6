package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// answer sets the provider's answer to alice's push (nil: waiting).
func (p *pushProvider) answer(out sdk.Outcome, reason sdk.Reason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if out == "" {
		delete(p.answers, "duo-tx-alice")
		return
	}
	p.answers["duo-tx-alice"] = out
	if reason != "" {
		p.reasons["duo-tx-alice"] = reason
	}
}

// TestDeniedPushFreesTheSlot: an attacker with the password starts a push
// from a login of their own; the user denies it on the phone. The user's
// own login then starts a push and gets one: the denied push is taken, its
// denial audited once (and counted, as its own poll would have), and the
// attacker's poll finds it gone. A push still waiting or approved keeps
// the slot (the allow is its login's); a fraud report locks the user, and
// the next start is answered with the lockout, sending nothing.
func TestDeniedPushFreesTheSlot(t *testing.T) {
	for _, tt := range []struct {
		name        string
		out         sdk.Outcome
		reason      sdk.Reason
		providerErr error            // every poll of the provider fails with it
		wantErr     func(error) bool // the user's start; nil: a new push
	}{
		{name: "denied", out: sdk.Deny},
		{name: "waiting", wantErr: framework.IsPushPending},
		{name: "approved", out: sdk.Allow, wantErr: framework.IsPushPending},
		{name: "fraud", out: sdk.Deny, reason: sdk.ReasonFraud, wantErr: func(err error) bool {
			return framework.CodeOf(err) == framework.CodeLockedOut && !framework.IsPushPending(err)
		}},
		// The provider cannot say (its backend down, a garbled answer):
		// the slot stays as it was, the start refused as before.
		{name: "provider fails", providerErr: sdk.Errorf(sdk.KindUnavailable, "backend answered garbage"), wantErr: framework.IsPushPending},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
			theirs, err := pushVerifyFor(fw, "attacker-login")
			if err != nil || theirs.Outcome != sdk.Pending {
				t.Fatalf("the attacker's push: %+v %v", theirs, err)
			}
			prov.answer(tt.out, tt.reason)
			prov.mu.Lock()
			prov.pollErr = tt.providerErr
			prov.mu.Unlock()
			mine, err := pushVerifyFor(fw, "user-login")
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("the user's start: %+v %v", mine, err)
				}
				if prov.sent != 1 {
					t.Errorf("%d pushes sent, want 1", prov.sent)
				}
				return
			}
			if err != nil || mine.Outcome != sdk.Pending || mine.TxID == theirs.TxID {
				t.Fatalf("the user's start after denying the other push: %+v %v, want a push of its own", mine, err)
			}
			if prov.sent != 2 {
				t.Errorf("%d pushes sent, want 2", prov.sent)
			}
			if _, err := fw.PollVerification(context.Background(), "alice", theirs.TxID); framework.CodeOf(err) != framework.CodeNotFound {
				t.Errorf("the attacker's poll of the denied push: %v, want not_found", err)
			}
			if n := countAudited(t, fw, sdk.Deny); n != 1 {
				t.Errorf("%d denials audited, want 1", n)
			}
		})
	}
}

// TestDeniedPushFreedOnce: after the user denied another login's push,
// pollBurst starts of the user's login at once record the denial once,
// send one push, and all answer it. On one host, and on two PostgreSQL
// replicas.
func TestDeniedPushFreedOnce(t *testing.T) {
	fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
	startsAfterDenial(t, prov, fw)
}

func TestDeniedPushFreedOnceAcrossReplicas(t *testing.T) {
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	startsAfterDenial(t, prov, pushReplicas(t, prov)...)
}

func startsAfterDenial(t *testing.T, prov *pushProvider, fws ...*framework.Framework) {
	t.Helper()
	if res, err := pushVerifyFor(fws[0], "attacker-login"); err != nil || res.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", res, err)
	}
	prov.answer(sdk.Deny, "")
	txids := burst.Count(pollBurst, func(i int) string {
		res, err := pushVerifyFor(fws[i%len(fws)], "user-login")
		if err != nil || res.Outcome != sdk.Pending {
			return "error: " + string(framework.CodeOf(err))
		}
		return res.TxID
	})
	if len(txids) != 1 {
		t.Errorf("%d starts of one login at once: %v, want all one push", pollBurst, txids)
	}
	if prov.sent != 2 {
		t.Errorf("%d pushes sent, want 2 (the attacker's and the user's)", prov.sent)
	}
	if n := countAudited(t, fws[0], sdk.Deny); n != 1 {
		t.Errorf("%d denials audited, want 1", n)
	}
}

// countAudited counts alice's verify decisions with outcome out.
func countAudited(t *testing.T, fw *framework.Framework, out sdk.Outcome) int {
	t.Helper()
	list, err := fw.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list {
		if e.Event == framework.EventVerify && e.Outcome == string(out) {
			n++
		}
	}
	return n
}

// TestOtherLoginsPushAskedSparingly: while another login's push waits,
// each refused start of the user's login would ask the provider about it
// (a call to Duo's API each press): twenty presses at once and twenty
// after them within askEvery ask once, and share that answer; after the
// window the next press asks again, and finds the denial.
func TestOtherLoginsPushAskedSparingly(t *testing.T) {
	fw, prov, clk, _ := newPushEnv(t, framework.PushLimit{})
	if res, err := pushVerifyFor(fw, "attacker-login"); err != nil || res.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", res, err)
	}
	asked := func() int {
		prov.mu.Lock()
		defer prov.mu.Unlock()
		return len(prov.polled)
	}
	refused := burst.Count(pollBurst, func(int) bool {
		_, err := pushVerifyFor(fw, "user-login")
		return framework.IsPushPending(err)
	})
	for range pollBurst {
		_, err := pushVerifyFor(fw, "user-login")
		refused[framework.IsPushPending(err)]++
	}
	if refused[true] != 2*pollBurst || asked() != 1 {
		t.Fatalf("%d of %d presses refused, the provider asked %d times; want all refused, asked once", refused[true], 2*pollBurst, asked())
	}
	prov.answer(sdk.Deny, "")
	if _, err := pushVerifyFor(fw, "user-login"); !framework.IsPushPending(err) || asked() != 1 {
		t.Fatalf("a press within the window after the denial: %v, asked %d times; want refused on the shared answer", err, asked())
	}
	clk.Advance(2 * time.Second)
	if res, err := pushVerifyFor(fw, "user-login"); err != nil || res.Outcome != sdk.Pending || asked() != 2 {
		t.Fatalf("a press after the window: %+v %v, asked %d times; want a push of its own, asked twice", res, err, asked())
	}
}
