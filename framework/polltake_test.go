package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/postgres"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
	"github.com/twofactor/twofactor/sdk"
)

// pgReplicas opens n stores on one fresh PostgreSQL schema, as n replicas
// of a host would (skipped without TEST_POSTGRES_DSN, see pgtest).
func pgReplicas(t *testing.T, n int) []framework.Store {
	t.Helper()
	return pgReplicasAt(t, pgtest.Schema(t), n)
}

// pgReplicasAt is pgReplicas on the schema dsn names, for a test that
// also reaches the database itself (to install a fault).
func pgReplicasAt(t *testing.T, dsn string, n int) []framework.Store {
	t.Helper()
	var stores []framework.Store
	for range n {
		s, err := postgres.Create(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	return stores
}

// pollBurst is how many polls of one decided push race.
const pollBurst = 20

// TestDecidedPushGivenOnce: a burst of polls of one approved push (a
// page's timer and its retry, a replayed request) gives the allow once;
// the other polls find the verification gone, as a poll after it does.
// One allow is audited. A denied push is likewise counted once.
func TestDecidedPushGivenOnce(t *testing.T) {
	for _, out := range []sdk.Outcome{sdk.Allow, sdk.Deny} {
		t.Run(string(out), func(t *testing.T) {
			fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
			pollDecidedAtOnce(t, prov, out, fw)
		})
	}
}

// TestDecidedPushGivenOnceAcrossReplicas: the same burst spread over two
// frameworks sharing one PostgreSQL database, as two replicas.
func TestDecidedPushGivenOnceAcrossReplicas(t *testing.T) {
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	pollDecidedAtOnce(t, prov, sdk.Allow, pushReplicas(t, prov)...)
}

// pushReplicas are two frameworks on one PostgreSQL database, as two
// replicas, with prov as "push" for staff, and alice enrolled.
func pushReplicas(t *testing.T, prov *pushProvider) []*framework.Framework {
	t.Helper()
	return pushReplicasAt(t, prov, newClock())
}

// pushReplicasAt is pushReplicas on clk.
func pushReplicasAt(t *testing.T, prov *pushProvider, clk *clock) []*framework.Framework {
	t.Helper()
	open := pushOpener(t, prov, clk, newKey(t), framework.Policy{})
	var fws []*framework.Framework
	for _, s := range pgReplicas(t, 2) {
		fws = append(fws, open(s))
	}
	if _, err := fws[0].BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	return fws
}

// pushOpener opens frameworks with prov as "push" for staff, on clk and
// key, with pol: one per store it is given (replicas, or a store and
// broken wrappers of it), closed when the test ends.
func pushOpener(t *testing.T, prov *pushProvider, clk *clock, key []byte, pol framework.Policy) func(framework.Store) *framework.Framework {
	return func(s framework.Store) *framework.Framework {
		t.Helper()
		fw, err := framework.New(t.Context(), framework.Options{Store: s, EncryptionKey: key, Now: clk.Now,
			Providers: []framework.ProviderSpec{{Name: "push", Staff: true, Impl: prov}}, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fw.Close() })
		return fw
	}
}

// pollDecidedAtOnce starts alice's push on the first framework, has the
// provider decide it (out), then polls it pollBurst times at once, spread
// over fws, through both poll entry points.
func pollDecidedAtOnce(t *testing.T, prov *pushProvider, out sdk.Outcome, fws ...*framework.Framework) {
	t.Helper()
	start, err := pushVerify(fws[0])
	if err != nil || start.Outcome != sdk.Pending {
		t.Fatalf("start: %+v %v", start, err)
	}
	prov.mu.Lock()
	prov.answers["duo-tx-alice"] = out
	prov.mu.Unlock()
	got := burst.Count(pollBurst, func(i int) string {
		fw := fws[i%len(fws)]
		var res framework.VerifyResult
		var err error
		if i%2 == 0 {
			res, err = fw.PollVerification(context.Background(), "alice", start.TxID)
		} else {
			res, err = fw.Poll(context.Background(), framework.PollInput{UserID: "alice", TxID: start.TxID})
		}
		if err != nil {
			return string(framework.CodeOf(err))
		}
		return string(res.Outcome)
	})
	if got[string(out)] != 1 || got[string(framework.CodeNotFound)] != pollBurst-1 {
		t.Errorf("%d polls of one %s push at once: %v, want one %s and %d not_found", pollBurst, out, got, out, pollBurst-1)
	}
	if decided := countAudited(t, fws[0], out); decided != 1 {
		t.Errorf("%d %s decisions audited, want 1", decided, out)
	}
}

// TestExpiredPushGivenOnce: a burst of polls of a push that expired gives
// its expiry once (one denial audited and counted), the rest not_found.
func TestExpiredPushGivenOnce(t *testing.T) {
	fw, prov, clk, _ := newPushEnv(t, framework.PushLimit{})
	start, err := pushVerify(fw)
	if err != nil || start.Outcome != sdk.Pending {
		t.Fatalf("start: %+v %v", start, err)
	}
	prov.answer(sdk.Deny, sdk.ReasonExpired) // the provider no longer knows it
	clk.Advance(6 * time.Minute)
	got := burst.Count(pollBurst, func(int) string {
		res, err := fw.PollVerification(context.Background(), "alice", start.TxID)
		if err != nil {
			return string(framework.CodeOf(err))
		}
		return string(res.Reason)
	})
	if got[string(sdk.ReasonExpired)] != 1 || got[string(framework.CodeNotFound)] != pollBurst-1 {
		t.Errorf("%d polls of one expired push at once: %v, want one expired and %d not_found", pollBurst, got, pollBurst-1)
	}
	if n := countAudited(t, fw, sdk.Deny); n != 1 {
		t.Errorf("%d denials audited, want 1", n)
	}
}

// TestExpiredChallengeGivenOnce: a burst of answers to a code challenge
// that expired is told of the expiry once (one denial audited), the rest
// not_found, as answers after it are.
func TestExpiredChallengeGivenOnce(t *testing.T) {
	fw, clk, _ := newPushFramework(t, pushSMSProvider{&pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}}, framework.PushLimit{})
	start, err := fw.StartVerification(t.Context(), framework.StartInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, Factor: "sms"})
	if err != nil || start.TxID == "" {
		t.Fatalf("start: %+v %v", start, err)
	}
	clk.Advance(6 * time.Minute)
	got := burst.Count(pollBurst, func(int) string {
		res, err := fw.Verify(context.Background(), framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff,
			Factor: "sms", TxID: start.TxID, Code: "123456"})
		if err != nil {
			return string(framework.CodeOf(err))
		}
		return string(res.Reason)
	})
	// An answer is a guess: the attempt gate holds back those past its
	// free attempts in flight (locked_out) before any reads the challenge.
	if got[string(sdk.ReasonExpired)] != 1 || got[string(framework.CodeNotFound)]+got[string(framework.CodeLockedOut)] != pollBurst-1 {
		t.Errorf("%d answers to one expired challenge at once: %v, want one expired and the rest not_found or locked_out", pollBurst, got)
	}
	list, err := fw.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, e := range list {
		if e.Reason == string(sdk.ReasonExpired) {
			expired++
		}
	}
	if expired != 1 {
		t.Errorf("%d expiries audited, want 1", expired)
	}
}
