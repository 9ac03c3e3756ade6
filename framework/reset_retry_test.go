package framework_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// failAfterDelete is a store whose next DeleteDevices or
// DropRecoveryCodesUnlessActive (whichever is armed) fails once: a write
// of a reset that fails after the enrollment is already deleted.
type failAfterDelete struct {
	framework.Store
	failDevices, failCodes atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (s *failAfterDelete) DeleteDevices(ctx context.Context, userID string) (int, error) {
	if s.failDevices.CompareAndSwap(true, false) {
		return 0, errInjected
	}
	return s.Store.DeleteDevices(ctx, userID)
}

func (s *failAfterDelete) DropRecoveryCodesUnlessActive(ctx context.Context, userID string) (bool, error) {
	if s.failCodes.CompareAndSwap(true, false) {
		return false, errInjected
	}
	return s.Store.DropRecoveryCodesUnlessActive(ctx, userID)
}

// TestResetRunAgainFinishesIt: a reset whose write fails after the
// enrollment is deleted answers the admin an error "to run it again"
// (ResetEnrollment's comment). Run again, it must finish what the first
// left: the remembered devices forgotten, the recovery codes that back no
// factor dropped. Else a lost phone's browsers still skip the second
// factor once the user enrolls again, and the old recovery codes (perhaps
// the sheet that was stolen with the phone) go on backing the new factor,
// which is then issued none of its own.
func TestResetRunAgainFinishesIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(*failAfterDelete)
	}{
		{"devices", func(s *failAfterDelete) { s.failDevices.Store(true) }},
		{"recovery codes", func(s *failAfterDelete) { s.failCodes.Store(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, path := openStore(t)
			faulty := &failAfterDelete{Store: store}
			e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
			pol := framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}}
			fw, err := framework.New(t.Context(), framework.Options{Store: faulty, EncryptionKey: e.key,
				Providers: []framework.ProviderSpec{inProcess()}, Now: e.clk.Now, Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fw.Close() })
			e.fw = fw

			secret := e.begin(t, "alice")
			codes := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now())).RecoveryCodes
			if len(codes) == 0 {
				t.Fatal("no recovery codes issued")
			}
			e.clk.Advance(period)
			res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
				Code: codeAt(t, secret, e.clk.Now()), RememberDevice: true, DeviceLabel: "the lost phone's browser"})
			if err != nil || res.DeviceToken == "" {
				t.Fatalf("verify with remember: %+v, %v; want a device token", res, err)
			}

			tc.arm(faulty)
			if err := fw.ResetEnrollment(t.Context(), "alice", "totp"); err == nil {
				t.Fatal("the reset with a failing write answered no error: the test proved nothing")
			}
			// As the admin is told: run it again. The enrollment is gone, so
			// not_found is a fair answer (as for any reset run twice), but
			// the run must finish what the first left.
			if err := fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil && framework.CodeOf(err) != framework.CodeNotFound {
				t.Errorf("the reset run again: %v; want it to finish the first", err)
			}
			if n, _ := store.ListDevices(t.Context(), "alice"); len(n) != 0 {
				t.Errorf("%d remembered devices after the reset was run again, want 0", len(n))
			}
			if n, _ := store.CountRecoveryCodes(t.Context(), "alice"); n != 0 {
				t.Errorf("%d recovery codes backing no factor after the reset was run again, want 0", n)
			}

			// Alice enrolls her new phone: it gets codes of its own, and
			// neither the old browser nor an old code stands in for it.
			e.clk.Advance(period)
			secret = e.begin(t, "alice")
			if got := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now())).RecoveryCodes; len(got) == 0 {
				t.Errorf("the new factor was issued no recovery codes (the old set backs it)")
			}
			ch, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff, DeviceToken: res.DeviceToken})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Decision != framework.DecisionVerify {
				t.Errorf("the lost phone's browser after the reset: %s/%s; want verify", ch.Decision, ch.Why)
			}
			if r, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
				Audience: framework.AudienceStaff, Code: codes[0]}); err != nil || r.Outcome == sdk.Allow {
				t.Errorf("an old recovery code after the reset: %s/%s, %v; want deny", r.Outcome, r.Reason, err)
			}
		})
	}
}
