package framework_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// TestNoPushWhileUnpolledFraudSettles: the user reported a push nobody
// polled as fraud, and it expired. One start settles it and, while that
// settle has not yet recorded the report, a burst of starts comes (on
// the same host, or spread over two replicas sharing PostgreSQL). Not
// one new push may reach the user who reported fraud: every start is
// answered with the lockout, the report counted once. Before, the settle
// took the push out of the store and only then recorded the answer, so
// the starts in between found nothing left to settle and sent a new push.
func TestNoPushWhileUnpolledFraudSettles(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		fw, prov, clk, _ := newPushEnv(t, framework.PushLimit{})
		noPushDuringSettle(t, prov, clk, fw)
	})
	t.Run("postgres replicas", func(t *testing.T) {
		prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
		clk := newClock()
		noPushDuringSettle(t, prov, clk, pushReplicasAt(t, prov, clk)...)
	})
}

// noPushDuringSettle holds the first settle of alice's expired push,
// which the user reported as fraud, between its taking the push and its
// record, runs a burst of starts spread over fws meanwhile, then lets the
// settle finish.
func noPushDuringSettle(t *testing.T, prov *pushProvider, clk *clock, fws ...*framework.Framework) {
	t.Helper()
	if first, err := pushVerifyFor(fws[0], "attacker-login"); err != nil || first.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", first, err)
	}
	prov.answer(sdk.Deny, sdk.ReasonFraud)
	clk.Advance(6 * time.Minute) // nobody polls; the transaction expires

	held, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	defer framework.SetSettleHook(func() {
		if first.CompareAndSwap(false, true) { // the first settle only; the others go on
			close(held)
			<-release
		}
	})()
	settler := make(chan string, 1)
	go func() { settler <- verdict(pushVerifyFor(fws[0], "attacker-login")) }()
	<-held
	got := burst.Count(pollBurst, func(i int) string {
		return verdict(pushVerifyFor(fws[i%len(fws)], "attacker-login"))
	})
	close(release)
	got[<-settler]++

	locked := "error:" + string(framework.CodeLockedOut)
	if got[locked] != pollBurst+1 {
		t.Errorf("%d starts after an unpolled fraud report, while it was being settled: %v, want every one %s", pollBurst+1, got, locked)
	}
	prov.mu.Lock()
	sent := prov.sent
	prov.mu.Unlock()
	if sent != 1 {
		t.Errorf("%d pushes sent, want 1 (the one reported as fraud; none after it)", sent)
	}
	wantFraudReports(t, fws[len(fws)-1], "alice", 1)
}

// TestNoPushWhilePolledFraudRecords: the user reports a push as fraud and
// the login polls it. While that poll has the answer but has not yet
// recorded it, a burst of starts comes (the same host, or two replicas
// sharing PostgreSQL). Not one new push may reach the user: the push
// stays the user's pending one until the record that ends it also writes
// the lockout. Before, the poll took the push out of the store and then
// recorded, so the starts in between found the slot free and sent.
func TestNoPushWhilePolledFraudRecords(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		fw, prov, clk, _ := newPushEnv(t, framework.PushLimit{})
		noPushDuringPollRecord(t, prov, clk, fw)
	})
	t.Run("postgres replicas", func(t *testing.T) {
		prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
		clk := newClock()
		noPushDuringPollRecord(t, prov, clk, pushReplicasAt(t, prov, clk)...)
	})
}

func noPushDuringPollRecord(t *testing.T, prov *pushProvider, _ *clock, fws ...*framework.Framework) {
	t.Helper()
	first, err := pushVerifyFor(fws[0], "attacker-login")
	if err != nil || first.Outcome != sdk.Pending {
		t.Fatalf("the attacker's push: %+v %v", first, err)
	}
	prov.answer(sdk.Deny, sdk.ReasonFraud)

	held, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	defer framework.SetSettleHook(func() {
		if once.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	})()
	poller := make(chan string, 1)
	go func() { poller <- verdict(fws[0].PollVerification(t.Context(), "alice", first.TxID)) }()
	<-held
	burst.Count(pollBurst, func(i int) string {
		return verdict(pushVerifyFor(fws[i%len(fws)], "attacker-login"))
	})
	close(release)
	if got := <-poller; got != "deny:fraud" {
		t.Errorf("the poll: %s, want deny:fraud", got)
	}
	prov.mu.Lock()
	sent := prov.sent
	prov.mu.Unlock()
	if sent != 1 {
		t.Errorf("%d pushes sent, want 1 (the one reported as fraud; none while its answer was recorded)", sent)
	}
	if got := verdict(pushVerifyFor(fws[len(fws)-1], "attacker-login")); got != "error:"+string(framework.CodeLockedOut) {
		t.Errorf("a start after the fraud report: %s, want locked out", got)
	}
}
