package framework_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// pushy is an in-process provider that can push and take a passcode, as
// Duo can. It enrolls without confirmation; Verify allows, except for the
// codes "bypass" (Duo's bypass: allow without a factor) and "safe" (allow
// by failmode safe).
type pushy struct{}

func (pushy) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "pushy", Version: "1", Capabilities: sdk.Capabilities{Code: true, Push: true, Factors: []sdk.Factor{"push", "passcode"}}}, nil
}
func (pushy) Configure(context.Context, sdk.Settings) error { return nil }
func (pushy) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}
func (pushy) Enroll(context.Context, sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return sdk.EnrollResponse{State: []byte("device"), Done: true}, nil
}
func (pushy) Verify(_ context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	switch req.Code {
	case "bypass":
		return sdk.VerifyResponse{Outcome: sdk.Allow, Unprompted: true, Details: map[string]string{"duo": "bypass"}}, nil
	case "safe":
		return sdk.VerifyResponse{Outcome: sdk.Allow, Reason: sdk.ReasonFailmodeSafe}, nil
	case "wrong":
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	return sdk.VerifyResponse{Outcome: sdk.Allow}, nil
}

// policySpecs: TOTP for both audiences, pushy for staff only.
func policySpecs() []framework.ProviderSpec {
	return []framework.ProviderSpec{
		{Name: "totp", Staff: true, Clients: true, Settings: totpSettings, Impl: totpprovider.New()},
		{Name: "pushy", Staff: true, Impl: pushy{}},
	}
}

// newPolicyEnv is newEnv with a policy.
func newPolicyEnv(t *testing.T, p framework.Policy) *env {
	t.Helper()
	store, path := openStore(t)
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	e.fw = startPolicy(t, e, p)
	return e
}

// startPolicy starts another framework on e's store and clock.
func startPolicy(t *testing.T, e *env, p framework.Policy) *framework.Framework {
	t.Helper()
	fw, err := framework.New(t.Context(), framework.Options{Store: e.store, EncryptionKey: e.key, Providers: policySpecs(), Now: e.clk.Now, Policy: p})
	if err != nil {
		t.Fatalf("framework.New: %v", err)
	}
	t.Cleanup(func() { fw.Close() })
	return fw
}

func (e *env) enrollPushy(t *testing.T, user string) {
	t.Helper()
	if res, err := e.fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: user, Provider: "pushy", Audience: framework.AudienceStaff}); err != nil || res.Status != framework.StatusActive {
		t.Fatalf("enroll pushy: %+v, %v", res, err)
	}
}

// enrollPushyEarlier enrolls in pushy under no policy, as before an admin
// left pushy out of the audience's policy.
func (e *env) enrollPushyEarlier(t *testing.T, user string) {
	t.Helper()
	earlier := &env{fw: startPolicy(t, e, framework.Policy{})}
	earlier.enrollPushy(t, user)
}

// remember verifies pushy with remember_device and returns the token.
func (e *env) remember(t *testing.T, user string, aud framework.Audience, code string) framework.VerifyResult {
	t.Helper()
	res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: user, Provider: "pushy", Audience: aud, Code: code,
		RememberDevice: true, DeviceLabel: "test browser"})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return res
}

// decision renders a challenge result as "decision/why[/providers]".
func decision(r framework.ChallengeResult) string {
	s := string(r.Decision) + "/" + string(r.Why)
	var ps []string
	for _, p := range r.Providers {
		ps = append(ps, p.Name+":"+strings.Join(p.Factors, "+"))
	}
	if len(ps) > 0 {
		s += "/" + strings.Join(ps, ",")
	}
	return s
}

var (
	staff  = framework.AudienceStaff
	client = framework.AudienceClient
)

// TestChallengeDecisions is the table of Challenge's decisions: each case
// sets up a user, then challenges in turn and expects these decisions.
func TestChallengeDecisions(t *testing.T) {
	remember := framework.RememberDevicePolicy{Enabled: true, Days: 7}
	tests := []struct {
		name   string
		policy framework.Policy
		// setup prepares alice and returns the challenge input.
		setup func(t *testing.T, e *env) framework.ChallengeInput
		want  []string
	}{
		{"nothing required, nothing enrolled", framework.Policy{}, nil,
			[]string{"allow/not_required", "allow/not_required"}},
		{"required: enroll in any provider for the audience", framework.Policy{Staff: framework.AudiencePolicy{Require: true}}, nil,
			[]string{"enroll/enrollment_required/pushy:push+passcode,totp:code"}},
		{"required: enroll only in the allowed ones", framework.Policy{Staff: framework.AudiencePolicy{Require: true, AllowedProviders: []string{"totp"}}}, nil,
			[]string{"enroll/enrollment_required/totp:code"}},
		{"required for clients: pushy does not serve them", framework.Policy{Clients: framework.AudiencePolicy{Require: true}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				return framework.ChallengeInput{UserID: "alice", Audience: client}
			},
			[]string{"enroll/enrollment_required/totp:code"}},
		{"grace logins, then enroll", framework.Policy{Staff: framework.AudiencePolicy{Require: true, GraceLogins: 2}}, nil,
			// A grace login lists the providers to enroll in, so a login page can offer them.
			[]string{"allow/grace_login/pushy:push+passcode,totp:code", "allow/grace_login/pushy:push+passcode,totp:code",
				"enroll/enrollment_required/pushy:push+passcode,totp:code", "enroll/enrollment_required/pushy:push+passcode,totp:code"}},
		{"grace logins count per audience", framework.Policy{Staff: framework.AudiencePolicy{Require: true, GraceLogins: 1}, Clients: framework.AudiencePolicy{Require: true, GraceLogins: 1}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				if r, err := e.fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: client}); err != nil || r.Why != framework.WhyGraceLogin {
					t.Fatalf("client challenge: %+v, %v", r, err)
				}
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"allow/grace_login/pushy:push+passcode,totp:code", "enroll/enrollment_required/pushy:push+passcode,totp:code"}},
		{"a pending enrollment is no factor", framework.Policy{Staff: framework.AudiencePolicy{Require: true}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.begin(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"enroll/enrollment_required/pushy:push+passcode,totp:code"}},
		{"enrolled: verify, even when not required", framework.Policy{},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enroll(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"verify/enrolled/totp:code"}},
		{"enrolled in both: both listed", framework.Policy{},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enroll(t, "alice")
				e.enrollPushy(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"verify/enrolled/pushy:push+passcode,totp:code"}},
		{"a provider disabled for the audience is not listed", framework.Policy{},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enroll(t, "alice")
				e.enrollPushy(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: client}
			},
			[]string{"verify/enrolled/totp:code"}},
		{"a provider the policy leaves out is not listed", framework.Policy{Staff: framework.AudiencePolicy{AllowedProviders: []string{"totp"}}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enroll(t, "alice")
				e.enrollPushyEarlier(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"verify/enrolled/totp:code"}},
		// A factor the audience may not use still is the user's factor:
		// never "not required", never enrolment in another one (whoever
		// has the password would set up their own).
		{"only a left-out provider, not required", framework.Policy{Staff: framework.AudiencePolicy{AllowedProviders: []string{"totp"}}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushyEarlier(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"deny/provider_unavailable"}},
		{"only a left-out provider, required with grace logins", framework.Policy{Staff: framework.AudiencePolicy{Require: true, GraceLogins: 3, AllowedProviders: []string{"totp"}}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushyEarlier(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"deny/provider_unavailable"}},
		{"locked out", framework.Policy{},
			func(t *testing.T, e *env) framework.ChallengeInput {
				secret := e.enroll(t, "alice")
				e.clk.Advance(period)
				for range 5 {
					e.verify(t, "alice", wrongCode(t, secret, e.clk.Now()))
				}
				return framework.ChallengeInput{UserID: "alice", Audience: staff}
			},
			[]string{"deny/locked_out", "deny/locked_out"}},
		{"locked out, even with a remembered device", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				tok := e.remember(t, "alice", staff, "").DeviceToken
				for range 5 {
					e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "pushy", Audience: staff, Code: "wrong"})
				}
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: tok}
			},
			[]string{"deny/locked_out"}},
		{"remembered device", framework.Policy{Staff: framework.AudiencePolicy{Require: true, RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: e.remember(t, "alice", staff, "").DeviceToken}
			},
			[]string{"allow/remembered_device", "allow/remembered_device"}},
		{"remembered device of another user", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				e.enrollPushy(t, "bob")
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: e.remember(t, "bob", staff, "").DeviceToken}
			},
			[]string{"verify/enrolled/pushy:push+passcode"}},
		{"remembered device, expired", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				tok := e.remember(t, "alice", staff, "").DeviceToken
				e.clk.Advance(7 * 24 * time.Hour)
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: tok}
			},
			[]string{"verify/enrolled/pushy:push+passcode"}},
		{"remembered device revoked", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				res := e.remember(t, "alice", staff, "")
				if err := e.fw.RevokeDevice(t.Context(), "alice", res.DeviceID); err != nil {
					t.Fatal(err)
				}
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: res.DeviceToken}
			},
			[]string{"verify/enrolled/pushy:push+passcode"}},
		{"remembered device does not skip enrollment", framework.Policy{Staff: framework.AudiencePolicy{Require: true, RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				tok := e.remember(t, "alice", staff, "").DeviceToken
				if err := e.fw.ResetEnrollment(t.Context(), "alice", "pushy"); err != nil {
					t.Fatal(err)
				}
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: tok}
			},
			[]string{"enroll/enrollment_required/pushy:push+passcode,totp:code"}},
		{"a malformed token is just no token", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}},
			func(t *testing.T, e *env) framework.ChallengeInput {
				e.enrollPushy(t, "alice")
				return framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: "not a token"}
			},
			[]string{"verify/enrolled/pushy:push+passcode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPolicyEnv(t, tt.policy)
			in := framework.ChallengeInput{UserID: "alice", Audience: staff}
			if tt.setup != nil {
				in = tt.setup(t, e)
			}
			for i, want := range tt.want {
				res, err := e.fw.Challenge(t.Context(), in)
				if err != nil {
					t.Fatalf("challenge %d: %v", i+1, err)
				}
				if got := decision(res); got != want {
					t.Fatalf("challenge %d = %s, want %s", i+1, got, want)
				}
				// recovery_available is answered with verify and deny only.
				asked := res.Decision == framework.DecisionVerify || res.Decision == framework.DecisionDeny
				if n, _ := e.fw.RecoveryCodesLeft(t.Context(), in.UserID); res.RecoveryAvailable != (asked && n > 0) {
					t.Errorf("challenge %d: recovery_available %v with %d recovery codes", i+1, res.RecoveryAvailable, n)
				}
				if res.Why == framework.WhyLockedOut && res.RetryAfter != 30*time.Second {
					t.Errorf("retry after %v, want 30s", res.RetryAfter)
				}
				if res.Why == framework.WhyGraceLogin && res.GraceLoginsLeft != tt.policy.Staff.GraceLogins-i-1 {
					t.Errorf("challenge %d: %d grace logins left", i+1, res.GraceLoginsLeft)
				}
				// "Remember this device" is offered with verify, for the policy's days.
				days := 0
				if rd := tt.policy.For(in.Audience).RememberDevice; rd.Enabled && res.Decision == framework.DecisionVerify {
					days = rd.Days
				}
				if res.RememberDeviceDays != days {
					t.Errorf("challenge %d: remember_device_days %d, want %d", i+1, res.RememberDeviceDays, days)
				}
			}
			// Every decision is audited with its why.
			list, err := e.fw.Audit(t.Context(), framework.AuditQuery{UserID: in.UserID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var audited []framework.AuditEntry
			for _, a := range list {
				if a.Event == framework.EventChallenge && a.Audience == in.Audience {
					audited = append(audited, a)
				}
			}
			if len(audited) != len(tt.want) {
				t.Fatalf("%d challenge audit entries, want %d", len(audited), len(tt.want))
			}
			for i, a := range audited {
				if got := a.Outcome + "/" + a.Reason; !strings.HasPrefix(tt.want[i], got) {
					t.Errorf("audit entry %d = %s, want %s", i+1, got, tt.want[i])
				}
			}
		})
	}
}

func TestChallengeRefusesBadInput(t *testing.T) {
	e := newPolicyEnv(t, framework.Policy{})
	for _, in := range []framework.ChallengeInput{
		{UserID: "alice", Audience: "admins"},
		{UserID: "", Audience: staff},
		{UserID: "a\x00b", Audience: staff},
	} {
		_, err := e.fw.Challenge(t.Context(), in)
		wantCode(t, err, framework.CodeInvalidRequest)
	}
}

// TestRememberDeviceRules: a token only for a second factor actually
// answered, a label within bounds, and a token follows the policy of the
// moment, not of the day it was issued.
func TestRememberDeviceRules(t *testing.T) {
	remember := framework.RememberDevicePolicy{Enabled: true, Days: 30}
	e := newPolicyEnv(t, framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: remember}})
	e.enrollPushy(t, "alice")

	for _, code := range []string{"bypass", "safe", "wrong"} {
		if res := e.remember(t, "alice", staff, code); res.DeviceToken != "" {
			t.Errorf("a device token for %q: %+v", code, res)
		}
	}
	for _, label := range []string{strings.Repeat("x", framework.MaxDeviceLabel+1), "tab\there", "\xff"} {
		_, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "pushy", Audience: staff, RememberDevice: true, DeviceLabel: label})
		wantCode(t, err, framework.CodeInvalidRequest)
	}
	if res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "pushy", Audience: staff,
		RememberDevice: true, DeviceLabel: strings.Repeat("é", framework.MaxDeviceLabel)}); err != nil || res.DeviceToken == "" {
		t.Errorf("a 200-character label: %+v, %v", res, err)
	}
	// A recovery code gets the user in, but does not remember the device.
	codes, err := e.fw.RegenerateRecoveryCodes(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider, Audience: staff,
		Code: codes[0], RememberDevice: true}); err != nil || res.Outcome != sdk.Allow || res.DeviceToken != "" {
		t.Errorf("recovery code with remember_device: %+v, %v", res, err)
	}

	tok := e.remember(t, "alice", staff, "").DeviceToken
	e.clk.Advance(10 * 24 * time.Hour)
	challenge := func(fw *framework.Framework) string {
		t.Helper()
		res, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: staff, DeviceToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Why)
	}
	if got := challenge(e.fw); got != "remembered_device" {
		t.Fatalf("after 10 days: %s", got)
	}
	// The admin shortens remembering to a week: the 10-day-old device is
	// remembered no more. Turned off, no device is.
	shorter := startPolicy(t, e, framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 7}}})
	if got := challenge(shorter); got != "enrolled" {
		t.Errorf("with a 7-day policy: %s", got)
	}
	off := startPolicy(t, e, framework.Policy{})
	if got := challenge(off); got != "enrolled" {
		t.Errorf("with remembering off: %s", got)
	}
	if got := challenge(e.fw); got != "remembered_device" {
		t.Errorf("the original policy again: %s", got)
	}

	// Listing and revoking all.
	list, err := e.fw.Devices(t.Context(), "alice")
	if err != nil || len(list) != 2 {
		t.Fatalf("devices: %+v, %v", list, err)
	}
	if n, err := e.fw.RevokeDevices(t.Context(), "alice"); err != nil || n != 2 {
		t.Errorf("revoke all: %d, %v", n, err)
	}
	if got := challenge(e.fw); got != "enrolled" {
		t.Errorf("after revoking all: %s", got)
	}
	wantCode(t, e.fw.RevokeDevice(t.Context(), "alice", "nope"), framework.CodeNotFound)
}

// TestPolicyCheckedAtNew: a policy that names a provider the audience
// cannot use, or contradicts itself, stops New.
func TestPolicyCheckedAtNew(t *testing.T) {
	tests := []struct {
		name   string
		policy framework.Policy
		want   string
	}{
		{"unknown provider", framework.Policy{Staff: framework.AudiencePolicy{AllowedProviders: []string{"sms"}}}, "policy.staff.allowed_providers"},
		{"provider not for the audience", framework.Policy{Clients: framework.AudiencePolicy{AllowedProviders: []string{"pushy"}}}, "policy.client.allowed_providers"},
		{"listed twice", framework.Policy{Staff: framework.AudiencePolicy{AllowedProviders: []string{"totp", "totp"}}}, "listed twice"},
		{"empty list", framework.Policy{Staff: framework.AudiencePolicy{AllowedProviders: []string{}}}, "is empty"},
		{"grace without require", framework.Policy{Staff: framework.AudiencePolicy{GraceLogins: 3}}, "policy.staff.grace_logins"},
		{"negative grace", framework.Policy{Staff: framework.AudiencePolicy{Require: true, GraceLogins: -1}}, "policy.staff.grace_logins"},
		{"remember too long", framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 366}}}, "remember_device.days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := openStore(t)
			_, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: policySpecs(), Policy: tt.policy})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("required with no provider", func(t *testing.T) {
		store, _ := openStore(t)
		_, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t),
			Policy: framework.Policy{Clients: framework.AudiencePolicy{Require: true}}})
		if err == nil || !strings.Contains(err.Error(), "policy.client.require") {
			t.Errorf("New = %v", err)
		}
	})
	t.Run("days default", func(t *testing.T) {
		e := newPolicyEnv(t, framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true}}})
		e.enrollPushy(t, "alice")
		e.remember(t, "alice", staff, "")
		list, _ := e.fw.Devices(t.Context(), "alice")
		if len(list) != 1 || list[0].ExpiresAt.Sub(list[0].CreatedAt) != framework.DefaultRememberDays*24*time.Hour {
			t.Errorf("devices = %+v", list)
		}
		// A login page offers the same days.
		if res, err := e.fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: staff}); err != nil || res.RememberDeviceDays != framework.DefaultRememberDays {
			t.Errorf("challenge = %+v, %v; want remember_device_days %d", res, err, framework.DefaultRememberDays)
		}
	})
}
