package framework_test

import (
	"context"
	"testing"

	"github.com/twofactor/twofactor/framework"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// renamed is a provider under another name (a second TOTP).
type renamed struct {
	sdk.Provider
	name string
}

func (r renamed) Info(ctx context.Context) (sdk.Info, error) {
	i, err := r.Provider.Info(ctx)
	i.Name = r.name
	return i, err
}

// twoTOTPs is a framework with two TOTP providers, "totp" and "totp2".
func twoTOTPs(t *testing.T) *env {
	return newEnv(t,
		framework.ProviderSpec{Name: "totp", Staff: true, Settings: totpSettings, Impl: totpprovider.New()},
		framework.ProviderSpec{Name: "totp2", Staff: true, Settings: totpSettings, Impl: renamed{totpprovider.New(), "totp2"}},
	)
}

// TestResetDropsCodesWithPendingBeside: an admin resets a user's factor
// (phone and recovery sheet lost together). The recovery codes go when no
// ACTIVE factor is left, even with a pending enrollment beside it (begun
// and abandoned, or begun by whoever holds the session): the old sheet
// then logs in no more, and the next factor the user confirms comes with
// a fresh set. With another active factor left, they stay: they back it
// up. (Before the fix the codes stayed while any enrollment row was left,
// so the stolen sheet was a second factor for the new enrollment, which
// was issued no codes.)
func TestResetDropsCodesWithPendingBeside(t *testing.T) {
	for _, tt := range []struct {
		name string
		// totp2Active: the other enrollment is active, not pending.
		totp2Active bool
		wantLeft    int  // codes left after the reset
		wantFresh   bool // the confirm of totp2 after the reset shows a set
	}{
		{name: "pending beside", wantLeft: 0, wantFresh: true},
		{name: "active beside", totp2Active: true, wantLeft: 10, wantFresh: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := twoTOTPs(t)
			ctx := t.Context()
			conf := e.confirm(t, "alice", codeAt(t, e.begin(t, "alice"), e.clk.Now()))
			if conf.Status != framework.StatusActive || len(conf.RecoveryCodes) == 0 {
				t.Fatalf("confirm = %+v", conf)
			}
			old := conf.RecoveryCodes
			res, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: "totp2", Audience: framework.AudienceStaff})
			if err != nil || res.Status != framework.StatusPending {
				t.Fatalf("begin totp2: %+v %v", res, err)
			}
			secret2 := secretOf(t, res.Display)
			confirm2 := func() framework.ConfirmResult {
				e.clk.Advance(period)
				c, err := e.fw.ConfirmEnrollment(ctx, "alice", "totp2", codeAt(t, secret2, e.clk.Now()))
				if err != nil || c.Status != framework.StatusActive {
					t.Fatalf("confirm totp2: %+v %v", c, err)
				}
				return c
			}
			if tt.totp2Active {
				if c := confirm2(); len(c.RecoveryCodes) != 0 {
					t.Fatalf("a second factor came with %d codes", len(c.RecoveryCodes))
				}
			}

			if err := e.fw.ResetEnrollment(ctx, "alice", "totp"); err != nil {
				t.Fatal(err)
			}
			if n, err := e.fw.RecoveryCodesLeft(ctx, "alice"); err != nil || n != tt.wantLeft {
				t.Fatalf("codes left after the reset: %d %v, want %d", n, err, tt.wantLeft)
			}
			var fresh []string
			if !tt.totp2Active {
				fresh = confirm2().RecoveryCodes
			}
			if got := len(fresh) > 0; got != tt.wantFresh {
				t.Fatalf("the next factor confirmed came with %d codes; want a fresh set: %v", len(fresh), tt.wantFresh)
			}
			recovery := func(code string) sdk.Outcome {
				v, err := e.fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
					Audience: framework.AudienceStaff, Code: code})
				if err != nil {
					t.Fatal(err)
				}
				return v.Outcome
			}
			wantOld := sdk.Deny
			if tt.wantLeft > 0 {
				wantOld = sdk.Allow
			}
			if got := recovery(old[0]); got != wantOld {
				t.Errorf("a code issued before the reset: %s, want %s", got, wantOld)
			}
			if tt.wantFresh {
				if got := recovery(fresh[0]); got != sdk.Allow {
					t.Errorf("a code of the fresh set: %s, want allow", got)
				}
			}
		})
	}
}
