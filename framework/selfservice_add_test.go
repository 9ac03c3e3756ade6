package framework_test

import (
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// TestAddFactorStepUpRefusals: the step-up before adding a factor is
// refused, before any code is checked (the code is still good after), for
// a user with no confirmed factor, a provider that is not running, one the
// user already has, and an answer that is not given on the spot. (Its
// allow, which needs a second provider, is tested through the web UI:
// host/ui TestSecurityAddNeedsStepUp.)
func TestAddFactorStepUpRefusals(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	secret := e.enroll(t, "alice")
	code := codeAt(t, secret, e.clk.Advance(period))
	stepUp := func(user string) framework.VerifyInput {
		return framework.VerifyInput{UserID: user, Provider: "totp", Audience: framework.AudienceStaff, Code: code}
	}
	push := stepUp("alice")
	push.Factor = framework.FactorPush
	for _, tt := range []struct {
		name     string
		provider string
		in       framework.VerifyInput
		want     framework.Code
	}{
		{"no confirmed factor", "totp", stepUp("bob"), framework.CodeNotEnrolled},
		{"a provider not running", "duo", stepUp("alice"), framework.CodeUnknownProvider},
		{"a provider the user has", "totp", stepUp("alice"), framework.CodeAlreadyEnrolled},
		{"a push", "totp", push, framework.CodeInvalidRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.fw.AddFactorStepUp(ctx, tt.provider, tt.in)
			wantCode(t, err, tt.want)
		})
	}
	// Nothing was checked: the code is still good, once.
	e.wantVerify(t, "alice", code, sdk.Allow, "")
	e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
}
