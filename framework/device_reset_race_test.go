package framework_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// resetBeforePutDevice is a store whose next PutDevice runs hook first:
// an admin's reset that comes between a verify's recorded allow and the
// storing of the device it remembers.
type resetBeforePutDevice struct {
	framework.Store
	hook atomic.Pointer[func()]
}

func (s *resetBeforePutDevice) PutDevice(ctx context.Context, d framework.RememberedDevice, keep int) error {
	if h := s.hook.Swap(nil); h != nil {
		(*h)()
	}
	return s.Store.PutDevice(ctx, d, keep)
}

// TestDeviceRememberedDuringResetSkipsNothing: the finder of a lost phone
// verifies with it and asks to remember the browser; the allow is
// recorded, and before its device is stored the admin resets the factor
// (the user reported the phone lost). The device stored after the reset
// must skip nothing: a reset forgets the browsers the lost factor vouched
// for, and the user's next factor (her new phone) is not vouched for by a
// device remembered with the old one.
func TestDeviceRememberedDuringResetSkipsNothing(t *testing.T) {
	store, path := openStore(t)
	wrapped := &resetBeforePutDevice{Store: store}
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	pol := framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}}
	fw, err := framework.New(t.Context(), framework.Options{Store: wrapped, EncryptionKey: e.key,
		Providers: []framework.ProviderSpec{inProcess()}, Now: e.clk.Now, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	e.fw = fw

	old := e.enroll(t, "alice")
	ran := false
	hook := func() {
		ran = true
		if err := fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil {
			t.Errorf("ResetEnrollment: %v", err)
		}
	}
	wrapped.hook.Store(&hook)
	e.clk.Advance(period)
	res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
		Code: codeAt(t, old, e.clk.Now()), RememberDevice: true, DeviceLabel: "the finder's browser"})
	if !ran {
		t.Fatal("the hook did not run: the test proved nothing")
	}
	t.Logf("the verify answered: %s/%s token=%t, %v", res.Outcome, res.Reason, res.DeviceToken != "", err)
	if err != nil || res.DeviceToken == "" {
		return // no token given: nothing the finder can present
	}

	// Alice enrolls her new phone.
	e.clk.Advance(period)
	e.enroll(t, "alice")
	ch, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff, DeviceToken: res.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Decision != framework.DecisionVerify {
		t.Errorf("the finder's browser after the reset and alice's new enrollment: %s/%s; want verify", ch.Decision, ch.Why)
	}
}
