package framework_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

func newPushEnv(t *testing.T, limit framework.PushLimit) (*framework.Framework, *pushProvider, *clock, framework.Store) {
	t.Helper()
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	fw, clk, store := newPushFramework(t, prov, limit)
	return fw, prov, clk, store
}

// newPushFramework is a framework whose one provider, "push" for staff,
// is impl, with alice enrolled in it.
func newPushFramework(t *testing.T, impl sdk.Provider, limit framework.PushLimit) (*framework.Framework, *clock, framework.Store) {
	t.Helper()
	store, _ := openStore(t)
	clk := newClock()
	fw, err := framework.New(t.Context(), framework.Options{
		Store: store, EncryptionKey: newKey(t), Now: clk.Now, PushLimit: limit,
		Providers: []framework.ProviderSpec{{Name: "push", Staff: true, Impl: impl}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	if _, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	return fw, clk, store
}

func pushVerify(fw *framework.Framework) (framework.VerifyResult, error) {
	return pushVerifyFor(fw, "login-1")
}

// pushVerifyFor starts a push for the login session.
func pushVerifyFor(fw *framework.Framework, session string) (framework.VerifyResult, error) {
	return fw.Verify(context.Background(), framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, Factor: "push",
		Session: session})
}

// TestPushBomb: twenty push requests at once from one login send one
// push, and every request answers its transaction; twenty more at once
// from other logins (and from none) while it waits are refused, sending
// nothing and handing out no transaction id.
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
		t.Errorf("answers to a push bomb of one login: %v, want every one pending", got)
	}
	if prov.sent != 1 || len(txids) != 1 {
		t.Errorf("%d pushes sent, %d transaction ids answered; want 1 and 1", prov.sent, len(txids))
	}
	others := burst.Count(20, func(i int) string {
		session := fmt.Sprintf("other-%d", i)
		if i%4 == 0 {
			session = ""
		}
		res, err := pushVerifyFor(fw, session)
		if res.TxID != "" {
			return "txid handed out"
		}
		if framework.IsPushPending(err) && asError(err).RetryAfter > 0 {
			return "refused"
		}
		return verdict(res, err)
	})
	if others["refused"] != 20 || prov.sent != 1 {
		t.Errorf("starts of other logins while the push waits: %v, %d pushes sent; want 20 refused and 1 sent", others, prov.sent)
	}
}

// TestPushOfAnotherLogin: a push is answered only into the login that
// started it. The user's login starts one; an attacker's login (the
// password, another session) asks for one and is refused, audited
// push_pending; the user approves and their login gets the allow; once it
// is answered, another login may start a push of its own.
func TestPushOfAnotherLogin(t *testing.T) {
	fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
	mine, err := pushVerifyFor(fw, "victim-login")
	if err != nil || mine.Outcome != sdk.Pending {
		t.Fatalf("the user's push: %+v %v", mine, err)
	}
	if _, err := pushVerifyFor(fw, "attacker-login"); !framework.IsPushPending(err) || framework.CodeOf(err) != framework.CodeLockedOut {
		t.Fatalf("the other login's start: %v, want locked_out for the pending push", err)
	}
	if _, err := fw.StartVerification(context.Background(), framework.StartInput{UserID: "alice", Provider: "push",
		Audience: framework.AudienceStaff, Factor: framework.FactorPush, Session: "attacker-login"}); !framework.IsPushPending(err) {
		t.Fatalf("the other login's StartVerification: %v, want refused", err)
	}
	list, _ := fw.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
	pending := 0
	for _, e := range list {
		if e.Reason == string(framework.ReasonPushPending) && e.Outcome == string(sdk.Deny) {
			pending++
		}
	}
	if pending != 2 {
		t.Errorf("%d refusals audited push_pending, want 2: %+v", pending, list)
	}
	prov.mu.Lock()
	prov.answers["duo-tx-alice"] = sdk.Allow
	prov.mu.Unlock()
	if res, err := fw.PollVerification(context.Background(), "alice", mine.TxID); err != nil || res.Outcome != sdk.Allow {
		t.Fatalf("the user's poll after approving: %+v %v", res, err)
	}
	prov.mu.Lock()
	delete(prov.answers, "duo-tx-alice")
	prov.mu.Unlock()
	if res, err := pushVerifyFor(fw, "attacker-login"); err != nil || res.Outcome != sdk.Pending || res.TxID == mine.TxID {
		t.Errorf("a new login's push once the first was answered: %+v %v, want a push of its own", res, err)
	}
	if prov.sent != 2 {
		t.Errorf("%d pushes sent, want 2", prov.sent)
	}
	if _, err := pushVerifyFor(fw, strings.Repeat("s", framework.MaxSession+1)); framework.CodeOf(err) != framework.CodeInvalidRequest {
		t.Errorf("an overlong session: %v, want invalid_request", err)
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

// pushSMSProvider pushes, and also sends a code by SMS (a challenge):
// the two share the user's one pending slot.
type pushSMSProvider struct{ *pushProvider }

func (p pushSMSProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "push", Version: "1", Capabilities: sdk.Capabilities{Push: true, Code: true,
		Factors: []sdk.Factor{"push", "sms"}, Challenges: []sdk.Factor{"sms"}}}, nil
}

func (p pushSMSProvider) Challenge(_ context.Context, r sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	return sdk.ChallengeResponse{TxID: "sms-" + r.User.ID, Message: "sent"}, nil
}

// newPushSMSEnv is a framework with pushSMSProvider and alice enrolled.
func newPushSMSEnv(t *testing.T) *framework.Framework {
	t.Helper()
	fw, _, _ := newPushFramework(t, pushSMSProvider{&pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}}, framework.PushLimit{})
	return fw
}

// TestChallengeStartDoesNotJoinAnotherLoginsPush: with a provider that
// pushes and sends codes, the user's login starts a push; another
// login's start of the code challenge is refused (push_pending) instead of
// being handed the push's txid, and so cannot poll the user's approval;
// the same login's challenge start still finds its own push.
func TestChallengeStartDoesNotJoinAnotherLoginsPush(t *testing.T) {
	fw := newPushSMSEnv(t)
	ctx := t.Context()
	start := func(factor, session string) (framework.StartResult, error) {
		return fw.StartVerification(ctx, framework.StartInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff,
			Factor: factor, Session: session})
	}
	mine, err := start(framework.FactorPush, "victim-login")
	if err != nil || mine.TxID == "" {
		t.Fatalf("the user's push: %+v %v", mine, err)
	}
	theirs, err := start("sms", "attacker-login")
	if !framework.IsPushPending(err) || theirs.TxID != "" {
		t.Fatalf("another login's SMS start while the push waits: %+v %v, want push_pending and no txid", theirs, err)
	}
	if again, err := start("sms", "victim-login"); err != nil || again.TxID != mine.TxID {
		t.Errorf("the same login's SMS start: %+v %v, want its own pending push", again, err)
	}
	list, _ := fw.Audit(ctx, framework.AuditQuery{UserID: "alice"})
	if last := list[len(list)-2]; last.Reason != string(framework.ReasonPushPending) {
		t.Errorf("the refused start's audit entry: %+v", last)
	}
}

// TestCodeChallengeBurstStillJoins: a code challenge is not bound to its
// login (answering it needs the code): a burst of starts of one user's
// email-like challenge, from different logins, sends one code and hands
// every start the same txid, whether it comes while the first is being
// sent or after. Binding pushes must not change that.
func TestCodeChallengeBurstStillJoins(t *testing.T) {
	fw := newPushSMSEnv(t)
	var mu sync.Mutex
	txids := map[string]bool{}
	got := burst.Count(12, func(i int) string {
		res, err := fw.StartVerification(t.Context(), framework.StartInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff,
			Factor: "sms", Session: fmt.Sprint("login-", i)})
		if err != nil {
			return err.Error()
		}
		mu.Lock()
		txids[res.TxID] = true
		mu.Unlock()
		return "txid"
	})
	if got["txid"] != 12 || len(txids) != 1 {
		t.Errorf("a burst of 12 code challenge starts from 12 logins: %v, %d txids; want 12 answered with one txid", got, len(txids))
	}
}
