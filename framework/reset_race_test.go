package framework_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// inReset marks the context of the reset whose codes step midReset
// interrupts.
type inReset struct{}

// midReset runs hook once, in the middle of a reset's decision about the
// user's recovery codes: after a reset's read of the enrollments (the
// check of a check-then-drop), or before its atomic drop. Only calls with
// an inReset context fire it, so the hook's own store calls pass through.
type midReset struct {
	framework.Store
	hook *func()
}

func (m midReset) fire(ctx context.Context) {
	if ctx.Value(inReset{}) != nil && *m.hook != nil {
		h := *m.hook
		*m.hook = nil
		h()
	}
}

func (m midReset) List(ctx context.Context, userID string) ([]framework.Enrollment, error) {
	list, err := m.Store.List(ctx, userID)
	m.fire(ctx)
	return list, err
}

func (m midReset) DropRecoveryCodesUnlessActive(ctx context.Context, userID string) (bool, error) {
	m.fire(ctx)
	return m.Store.DropRecoveryCodesUnlessActive(ctx, userID)
}

// TestResetRacingConfirmKeepsCodes: an admin resets alice's only active
// factor while she confirms another (begun before). Her confirmation
// completes in the middle of the reset's codes step. The factor she
// confirmed is active, so her codes stay: they back it up, and the
// confirmation showed none because she has them. (With a check and a drop
// as two steps, the reset had seen the new factor still pending and
// dropped the codes after the confirmation: an active factor and no codes,
// or, for a user without codes, a fresh set shown and then deleted.)
func TestResetRacingConfirmKeepsCodes(t *testing.T) {
	store, _ := openStore(t)
	resetRacingConfirm(t, store, store)
}

// TestResetRacingConfirmKeepsCodesAcrossReplicas: the reset on one
// replica, the confirmation on another, on one PostgreSQL database.
func TestResetRacingConfirmKeepsCodesAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	resetRacingConfirm(t, stores[0], stores[1])
}

// twoFactorSpecs are the providers of the reset races: "totp" and "totp2".
func twoFactorSpecs() []framework.ProviderSpec {
	return []framework.ProviderSpec{
		{Name: "totp", Staff: true, Settings: totpSettings, Impl: totpprovider.New()},
		{Name: "totp2", Staff: true, Settings: totpSettings, Impl: renamed{totpprovider.New(), "totp2"}},
	}
}

// racer is a user set up for a reset race: "totp" active with its
// recovery codes, "totp2" begun.
type racer struct {
	id      string
	first   []string // the codes shown with "totp"
	secret2 string
}

func newRacer(t *testing.T, fw *framework.Framework, clk *clock, id string) racer {
	t.Helper()
	e := &env{fw: fw, clk: clk}
	first := e.confirm(t, id, codeAt(t, e.begin(t, id), clk.Now()))
	if len(first.RecoveryCodes) == 0 {
		t.Fatalf("%s's first factor came with no codes: %+v", id, first)
	}
	begun, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: id, Provider: "totp2", Audience: framework.AudienceStaff})
	if err != nil {
		t.Fatal(err)
	}
	return racer{id: id, first: first.RecoveryCodes, secret2: secretOf(t, begun.Display)}
}

// confirm2 confirms the racer's "totp2" with the code of the clock's step.
func (r racer) confirm2(t *testing.T, fw *framework.Framework, clk *clock) (framework.ConfirmResult, error) {
	return fw.ConfirmEnrollment(context.Background(), r.id, "totp2", codeAt(t, r.secret2, clk.Now()))
}

// check: once the reset and the confirmation are both done, the racer
// has an active factor and the codes they hold, and one of them works:
// the set the confirmation showed, or, when it showed none, the first.
func (r racer) check(t *testing.T, fw *framework.Framework, confirmed framework.ConfirmResult, err error) {
	t.Helper()
	if err != nil || confirmed.Status != framework.StatusActive {
		t.Fatalf("%s's confirmation: %+v %v", r.id, confirmed, err)
	}
	held := confirmed.RecoveryCodes
	if len(held) == 0 {
		held = r.first
	}
	left, err := fw.RecoveryCodesLeft(context.Background(), r.id)
	if err != nil {
		t.Fatal(err)
	}
	if left != len(held) {
		t.Fatalf("%s has an active factor and %d recovery codes; want the %d they hold", r.id, left, len(held))
	}
	v, err := fw.Verify(context.Background(), framework.VerifyInput{UserID: r.id, Provider: framework.RecoveryProvider,
		Audience: framework.AudienceStaff, Code: held[0]})
	if err != nil || v.Outcome != sdk.Allow {
		t.Errorf("a code %s holds: %+v %v, want allow", r.id, v, err)
	}
}

// resetRacingConfirm resets alice's "totp" on a framework over resetOn
// while, in the middle of it, a framework over confirmOn confirms her
// "totp2".
func resetRacingConfirm(t *testing.T, resetOn, confirmOn framework.Store) {
	clk, key := newClock(), newKey(t)
	var hook func()
	admin := startFramework(t, midReset{resetOn, &hook}, key, clk, 0, twoFactorSpecs()...)
	user := startFramework(t, confirmOn, key, clk, 0, twoFactorSpecs()...)
	alice := newRacer(t, user, clk, "alice")
	clk.Advance(period)

	var confirmed framework.ConfirmResult
	var confirmErr error
	hook = func() { confirmed, confirmErr = alice.confirm2(t, user, clk) }
	if err := admin.ResetEnrollment(context.WithValue(t.Context(), inReset{}, true), "alice", "totp"); err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		t.Fatal("the reset passed no codes step")
	}
	alice.check(t, user, confirmed, confirmErr)
}

// resetBurst is how many users' resets and confirmations race at once.
const resetBurst = 8

// TestResetsRacingConfirmsAcrossReplicas: resetBurst users' resets on
// one replica and their confirmations on another, all at once, without a
// hook: whatever the interleaving (on PostgreSQL a drop's DELETE can be
// seen by a confirmation before it commits), every user is left with the
// codes they hold.
func TestResetsRacingConfirmsAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	clk, key := newClock(), newKey(t)
	admin := startFramework(t, stores[0], key, clk, 0, twoFactorSpecs()...)
	user := startFramework(t, stores[1], key, clk, 0, twoFactorSpecs()...)
	racers := make([]racer, resetBurst)
	for i := range racers {
		racers[i] = newRacer(t, user, clk, fmt.Sprintf("user-%d", i))
	}
	clk.Advance(period)
	confirmed := make([]framework.ConfirmResult, resetBurst)
	errs := burst.Run(2*resetBurst, func(i int) error {
		r := racers[i/2]
		if i%2 == 0 {
			return admin.ResetEnrollment(context.Background(), r.id, "totp")
		}
		var err error
		confirmed[i/2], err = r.confirm2(t, user, clk)
		return err
	})
	for i, r := range racers {
		if errs[2*i] != nil {
			t.Fatalf("%s's reset: %v", r.id, errs[2*i])
		}
		r.check(t, user, confirmed[i], errs[2*i+1])
	}
}
