package framework_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// hungReservation is a store whose attempt reservations do not answer:
// each waits until its context ends and fails as the PostgreSQL store
// does then (store unavailable, the context's error), as on a server
// that stopped answering.
type hungReservation struct {
	framework.Store
}

func (s hungReservation) ReserveAttempt(ctx context.Context, _ string, _ framework.Budget, _ time.Time, _ func(int) time.Time) (framework.Reservation, bool, error) {
	<-ctx.Done()
	return framework.Reservation{}, false, framework.StoreUnavailable(ctx.Err())
}

// TestLoginOnHungStore: a login whose reservation the store never answers
// ends when the decision's deadline does, with store unavailable (503
// with Retry-After), not internal (500): its audit entry, which can then
// no longer be queued, fails because the store did not answer in time.
func TestLoginOnHungStore(t *testing.T) {
	defer framework.SetDecisionTimeout(300 * time.Millisecond)()
	store, path := openStore(t)
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	e.fw = startFramework(t, store, e.key, e.clk, 0, inProcess())
	secret := e.begin(t, "alice")
	e.confirm(t, "alice", codeAt(t, secret, e.clk.Now()))
	e.clk.Advance(30 * time.Second)

	hung := startFramework(t, hungReservation{store}, e.key, e.clk, 0, inProcess())
	for _, in := range []framework.VerifyInput{
		{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secret, e.clk.Now())},
		{UserID: "alice", Provider: framework.RecoveryProvider, Audience: framework.AudienceStaff, Code: "AAAA-BBBB-CCCC-DDDD"},
	} {
		res, err := hung.Verify(t.Context(), in)
		if res.Outcome == sdk.Allow || framework.CodeOf(err) != framework.CodeStoreUnavailable {
			t.Errorf("%s on a hung store: %+v, %v (%s); want store_unavailable", in.Provider, res, err, framework.CodeOf(err))
		}
	}
}

// hungReads is a store whose one method named hang does not answer: it
// waits until its context ends and fails then, as the PostgreSQL store
// does on a server that stopped answering (store unavailable), or with
// the context's error alone (raw), as a store that does not classify it.
type hungReads struct {
	framework.Store
	hang string
	raw  bool
}

func (s hungReads) stall(ctx context.Context, method string) error {
	if method != s.hang {
		return nil
	}
	<-ctx.Done()
	if s.raw {
		return ctx.Err()
	}
	return framework.StoreUnavailable(ctx.Err())
}

func (s hungReads) Attempts(ctx context.Context, userID string, b framework.Budget) (framework.Attempts, error) {
	if err := s.stall(ctx, "Attempts"); err != nil {
		return framework.Attempts{}, err
	}
	return s.Store.Attempts(ctx, userID, b)
}

func (s hungReads) Get(ctx context.Context, userID, provider string) (framework.Enrollment, error) {
	if err := s.stall(ctx, "Get"); err != nil {
		return framework.Enrollment{}, err
	}
	return s.Store.Get(ctx, userID, provider)
}

func (s hungReads) List(ctx context.Context, userID string) ([]framework.Enrollment, error) {
	if err := s.stall(ctx, "List"); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, userID)
}

func (s hungReads) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	if err := s.stall(ctx, "CountRecoveryCodes"); err != nil {
		return 0, err
	}
	return s.Store.CountRecoveryCodes(ctx, userID)
}

func (s hungReads) DeviceByHash(ctx context.Context, hash []byte) (framework.RememberedDevice, error) {
	if err := s.stall(ctx, "DeviceByHash"); err != nil {
		return framework.RememberedDevice{}, err
	}
	return s.Store.DeviceByHash(ctx, hash)
}

func (s hungReads) UseGraceLogin(ctx context.Context, userID string, aud framework.Audience, limit int) (int, bool, error) {
	if err := s.stall(ctx, "UseGraceLogin"); err != nil {
		return 0, false, err
	}
	return s.Store.UseGraceLogin(ctx, userID, aud, limit)
}

func (s hungReads) GetTransaction(ctx context.Context, userID, id string) (framework.Transaction, error) {
	if err := s.stall(ctx, "GetTransaction"); err != nil {
		return framework.Transaction{}, err
	}
	return s.Store.GetTransaction(ctx, userID, id)
}

func (s hungReads) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	if err := s.stall(ctx, "AppendAudit"); err != nil {
		return err
	}
	return s.Store.AppendAudit(ctx, e)
}

// TestChallengeAndPollOnHungStore: Challenge and the polls of a push
// wait for the store at most until the decision's deadline (shortened
// here) and then answer store_unavailable (503), with a caller's context
// that has no deadline (as an HTTP request's has none): each of their
// store calls, hung in turn, whether the store classifies the timeout or
// not.
func TestChallengeAndPollOnHungStore(t *testing.T) {
	const bound = 200 * time.Millisecond
	defer framework.SetDecisionTimeout(bound)()
	store, _ := openStore(t)
	clk := newClock()
	key := newKey(t)
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	open := pushOpener(t, prov, clk, key, framework.Policy{Staff: framework.AudiencePolicy{Require: true, GraceLogins: 3,
		RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}})
	fw := open(store)
	if _, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	pending, err := fw.StartVerification(t.Context(), framework.StartInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, Factor: framework.FactorPush})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // no deadline: the bound is the framework's
	staff := framework.AudienceStaff
	stepUp := framework.VerifyInput{UserID: "alice", Provider: "push", Audience: staff, Code: "123456"}
	calls := []struct {
		name  string
		hangs []string // the store calls it waits for, each hung in turn
		call  func(fw *framework.Framework) error
	}{
		{"Challenge of an enrolled user", []string{"Attempts", "List", "CountRecoveryCodes", "AppendAudit"}, func(fw *framework.Framework) error {
			_, err := fw.Challenge(ctx, framework.ChallengeInput{UserID: "alice", Audience: staff})
			return err
		}},
		{"Challenge with a device token", []string{"DeviceByHash"}, func(fw *framework.Framework) error {
			_, err := fw.Challenge(ctx, framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: strings.Repeat("A", 43)})
			return err
		}},
		{"Challenge of a user in grace", []string{"UseGraceLogin"}, func(fw *framework.Framework) error {
			_, err := fw.Challenge(ctx, framework.ChallengeInput{UserID: "bob", Audience: staff})
			return err
		}},
		{"PollVerification", []string{"GetTransaction"}, func(fw *framework.Framework) error {
			_, err := fw.PollVerification(ctx, "alice", pending.TxID)
			return err
		}},
		{"Poll remembering the device", []string{"GetTransaction"}, func(fw *framework.Framework) error {
			_, err := fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: pending.TxID, RememberDevice: true})
			return err
		}},
		{"Verify finishing a push", []string{"GetTransaction"}, func(fw *framework.Framework) error {
			_, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: staff, TxID: pending.TxID})
			return err
		}},
		{"BeginEnrollment", []string{"List"}, func(fw *framework.Framework) error {
			_, err := fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "carol", Provider: "push", Audience: staff})
			return err
		}},
		{"ConfirmEnrollment", []string{"List"}, func(fw *framework.Framework) error {
			_, err := fw.ConfirmEnrollment(ctx, "carol", "push", "123456")
			return err
		}},
		// The admin's and the pages' own calls.
		{"Enrollments", []string{"List"}, func(fw *framework.Framework) error {
			_, err := fw.Enrollments(ctx, "alice")
			return err
		}},
		{"ResetEnrollment", []string{"Get"}, func(fw *framework.Framework) error {
			return fw.ResetEnrollment(ctx, "carol", "push")
		}},
		{"RegenerateRecoveryCodes", []string{"List"}, func(fw *framework.Framework) error {
			_, err := fw.RegenerateRecoveryCodes(ctx, "alice")
			return err
		}},
		{"RecoveryCodesLeft", []string{"CountRecoveryCodes"}, func(fw *framework.Framework) error {
			_, err := fw.RecoveryCodesLeft(ctx, "alice")
			return err
		}},
		// The step-ups' checks before their Verify (which has its own bound).
		{"RemoveEnrollmentStepUp", []string{"Get"}, func(fw *framework.Framework) error {
			_, err := fw.RemoveEnrollmentStepUp(ctx, "push", stepUp)
			return err
		}},
		{"AddFactorStepUp", []string{"List"}, func(fw *framework.Framework) error {
			_, err := fw.AddFactorStepUp(ctx, "push", stepUp)
			return err
		}},
		{"RegenerateRecoveryCodesStepUp", []string{"List"}, func(fw *framework.Framework) error {
			_, _, err := fw.RegenerateRecoveryCodesStepUp(ctx, stepUp)
			return err
		}},
	}
	for _, c := range calls {
		for _, hang := range c.hangs {
			for _, raw := range []bool{false, true} {
				hung := open(hungReads{Store: store, hang: hang, raw: raw})
				began := time.Now()
				done := make(chan error, 1)
				go func() { done <- c.call(hung) }()
				select {
				case err := <-done:
					if framework.CodeOf(err) != framework.CodeStoreUnavailable {
						t.Errorf("%s with %s hung (raw %v): %v (%s) after %v; want store_unavailable at the decision's deadline (%v)",
							c.name, hang, raw, err, framework.CodeOf(err), time.Since(began), bound)
					}
				case <-time.After(20 * bound):
					t.Errorf("%s with %s hung (raw %v): no answer after %v; want store_unavailable at the decision's deadline (%v)",
						c.name, hang, raw, 20*bound, bound)
				}
			}
		}
	}
}

func (s hungReads) TakeTransaction(ctx context.Context, id string) error {
	if err := s.stall(ctx, "TakeTransaction"); err != nil {
		return err
	}
	return s.Store.TakeTransaction(ctx, id)
}

// failingTake is a store whose TakeTransaction fails at once with err, as
// a store that lost its connection mid-take or answered garbage does.
type failingTake struct {
	framework.Store
	err error
}

func (s failingTake) TakeTransaction(context.Context, string) error { return s.err }

// TestDecidedPushOnFailingTake: a push the user approved, whose
// transaction the store cannot take (it hangs until the decision's
// deadline, with or without classifying the timeout, or fails at once),
// gives no allow through any of the three ways of polling it, audits
// none, and is not lost: once the store answers, one poll gets the
// allow, once.
func TestDecidedPushOnFailingTake(t *testing.T) {
	const bound = 200 * time.Millisecond
	defer framework.SetDecisionTimeout(bound)()
	store, _ := openStore(t)
	clk := newClock()
	key := newKey(t)
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	open := pushOpener(t, prov, clk, key, framework.Policy{})
	fw := open(store)
	if _, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	start, err := pushVerify(fw)
	if err != nil || start.Outcome != sdk.Pending {
		t.Fatalf("start: %+v %v", start, err)
	}
	prov.mu.Lock()
	prov.answers["duo-tx-alice"] = sdk.Allow
	prov.mu.Unlock()

	ctx := context.Background() // no deadline: the bound is the framework's
	polls := []struct {
		name string
		poll func(*framework.Framework) (framework.VerifyResult, error)
	}{
		{"PollVerification", func(fw *framework.Framework) (framework.VerifyResult, error) {
			return fw.PollVerification(ctx, "alice", start.TxID)
		}},
		{"Poll", func(fw *framework.Framework) (framework.VerifyResult, error) {
			return fw.Poll(ctx, framework.PollInput{UserID: "alice", TxID: start.TxID, RememberDevice: true})
		}},
		{"Verify with the txid", func(fw *framework.Framework) (framework.VerifyResult, error) {
			return fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, TxID: start.TxID})
		}},
	}
	stores := []struct {
		name  string
		store framework.Store
		want  framework.Code
	}{
		{"take hung", hungReads{Store: store, hang: "TakeTransaction"}, framework.CodeStoreUnavailable},
		{"take hung, timeout unclassified", hungReads{Store: store, hang: "TakeTransaction", raw: true}, framework.CodeStoreUnavailable},
		{"take failing", failingTake{Store: store, err: errors.New("driver: bad connection")}, framework.CodeInternal},
	}
	for _, s := range stores {
		broken := open(s.store)
		for _, p := range polls {
			done := make(chan struct{})
			var res framework.VerifyResult
			var err error
			go func() { defer close(done); res, err = p.poll(broken) }()
			select {
			case <-done:
			case <-time.After(20 * bound):
				t.Fatalf("%s, %s: no answer after %v; want %s at the decision's deadline (%v)", s.name, p.name, 20*bound, s.want, bound)
			}
			if res.Outcome == sdk.Allow || res.DeviceToken != "" || framework.CodeOf(err) != s.want {
				t.Errorf("%s, %s: %+v, %v (%s); want %s and no allow", s.name, p.name, res, err, framework.CodeOf(err), s.want)
			}
		}
	}
	if n := countAudited(t, fw, sdk.Allow); n != 0 {
		t.Fatalf("%d allows audited while the take failed, want 0", n)
	}
	got := burst.Count(pollBurst, func(int) string {
		res, err := fw.PollVerification(ctx, "alice", start.TxID)
		if err != nil {
			return string(framework.CodeOf(err))
		}
		return string(res.Outcome)
	})
	if got[string(sdk.Allow)] != 1 || got[string(framework.CodeNotFound)] != pollBurst-1 {
		t.Errorf("%d polls once the store answers: %v, want one allow and %d not_found", pollBurst, got, pollBurst-1)
	}
	if n := countAudited(t, fw, sdk.Allow); n != 1 {
		t.Errorf("%d allows audited, want 1", n)
	}
}
