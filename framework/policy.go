package framework

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// Policy is the login policy: per audience, whether a second factor is
// required, with which providers, and whether a device may be remembered.
// The zero Policy requires nothing, allows every provider enabled for the
// audience and remembers no device.
type Policy struct {
	Staff   AudiencePolicy
	Clients AudiencePolicy
}

// AudiencePolicy is the login policy of one audience.
type AudiencePolicy struct {
	// Require forces a second factor: a user without one is told to
	// enroll (after GraceLogins logins without one).
	Require bool
	// GraceLogins is how many logins a user who must enroll may still make
	// without a factor; counted in the store per user and audience. Only
	// meaningful with Require.
	GraceLogins int
	// AllowedProviders are the providers this audience may enroll in and
	// verify with; nil means every provider enabled for the audience.
	AllowedProviders []string
	// RememberDevice lets a verified user skip the second factor on the
	// same device for a number of days.
	RememberDevice RememberDevicePolicy
}

// RememberDevicePolicy is "remember this device" for one audience.
type RememberDevicePolicy struct {
	Enabled bool
	Days    int // how long a remembered device skips the second factor
}

// Bounds of the policy's numbers.
const (
	MaxGraceLogins      = 1000
	MaxRememberDays     = 365
	DefaultRememberDays = 30 // Days when RememberDevice is enabled without one
)

// withDefaults fills RememberDevice.Days and copies the provider lists, so
// the caller's slices can change without changing the running policy.
func (p Policy) withDefaults() Policy {
	for _, a := range []*AudiencePolicy{&p.Staff, &p.Clients} {
		if a.RememberDevice.Enabled && a.RememberDevice.Days == 0 {
			a.RememberDevice.Days = DefaultRememberDays
		}
		if a.AllowedProviders != nil {
			a.AllowedProviders = slices.Clone(a.AllowedProviders)
		}
	}
	return p
}

// For returns the audience's policy; the zero one for an unknown audience.
func (p Policy) For(aud Audience) AudiencePolicy {
	switch aud {
	case AudienceStaff:
		return p.Staff
	case AudienceClient:
		return p.Clients
	}
	return AudiencePolicy{}
}

// policyKey is the config key of an audience's policy, for messages.
func policyKey(aud Audience) string {
	if aud == AudienceClient {
		return "policy.client"
	}
	return "policy.staff"
}

// checkPolicy validates the policy against the configured providers, as
// New does: the config loader checks the same with the YAML key named,
// this catches an embedder's mistake.
func (r *registry) checkPolicy() error {
	for _, aud := range []Audience{AudienceStaff, AudienceClient} {
		p, at := r.policy.For(aud), policyKey(aud)
		if p.GraceLogins < 0 || p.GraceLogins > MaxGraceLogins {
			return fmt.Errorf("%s.grace_logins: %d is out of range [0, %d]", at, p.GraceLogins, MaxGraceLogins)
		}
		if p.GraceLogins > 0 && !p.Require {
			return fmt.Errorf("%s.grace_logins: has no effect unless %s.require is true", at, at)
		}
		if p.RememberDevice.Enabled && (p.RememberDevice.Days < 1 || p.RememberDevice.Days > MaxRememberDays) {
			return fmt.Errorf("%s.remember_device.days: %d is out of range [1, %d]", at, p.RememberDevice.Days, MaxRememberDays)
		}
		if p.AllowedProviders != nil && len(p.AllowedProviders) == 0 {
			return fmt.Errorf("%s.allowed_providers: is empty; leave it out to allow every provider enabled for the audience", at)
		}
		for i, name := range p.AllowedProviders {
			if slices.Contains(p.AllowedProviders[:i], name) {
				return fmt.Errorf("%s.allowed_providers: %q is listed twice", at, name)
			}
			if _, ok := r.providers[name]; !ok {
				return fmt.Errorf("%s.allowed_providers: %q is not an enabled provider", at, name)
			}
			if !r.enabledFor(name, aud) {
				return fmt.Errorf("%s.allowed_providers: provider %q is not enabled for %s", at, name, aud)
			}
		}
		if p.Require && len(r.allowedProviders(aud)) == 0 {
			return fmt.Errorf("%s.require: no enabled provider serves %s, so no one could log in", at, aud)
		}
	}
	return nil
}

// enabledFor reports whether the provider's config enables it for the
// audience. The registry keeps this, not the running provider: a reload
// that changes only a provider's audiences keeps its process.
func (r *registry) enabledFor(name string, aud Audience) bool {
	a, ok := r.audiences[name]
	return ok && (aud == AudienceStaff && a.staff || aud == AudienceClient && a.clients)
}

// allowedProviders returns, sorted, the providers the audience may use:
// enabled for it and, when the policy lists some, listed.
func (r *registry) allowedProviders(aud Audience) []string {
	var out []string
	for _, n := range r.names {
		if r.providerAllowed(n, aud) {
			out = append(out, n)
		}
	}
	return out
}

func (r *registry) providerAllowed(name string, aud Audience) bool {
	if !r.enabledFor(name, aud) {
		return false
	}
	allowed := r.policy.For(aud).AllowedProviders
	return allowed == nil || slices.Contains(allowed, name)
}

// checkAllowed refuses a provider the audience's policy leaves out. The
// provider is known and enabled for the audience (checked before).
func (f *Framework) checkAllowed(name string, aud Audience) error {
	if !f.registry().providerAllowed(name, aud) {
		return errorf(CodeAudienceNotAllowed, nil, "provider %q is not allowed for %s by %s.allowed_providers", name, aud, policyKey(aud))
	}
	return nil
}

// Decision is what a login form must do next.
type Decision string

// Decisions of Challenge.
const (
	// DecisionAllow: let the user in without a second factor.
	DecisionAllow Decision = "allow"
	// DecisionVerify: ask for one of the listed providers' factors.
	DecisionVerify Decision = "verify"
	// DecisionEnroll: the user must enroll in one of the listed providers
	// before logging in.
	DecisionEnroll Decision = "enroll"
	// DecisionDeny: refuse the login for now (see RetryAfter).
	DecisionDeny Decision = "deny"
)

// Why says why Challenge decided as it did; it is audited with the
// decision.
type Why string

// Reasons of Challenge's decisions.
const (
	WhyNotRequired      Why = "not_required"        // allow: no factor enrolled and the policy requires none
	WhyRememberedDevice Why = "remembered_device"   // allow: a valid remembered-device token
	WhyGraceLogin       Why = "grace_login"         // allow: must enroll, but a grace login was left
	WhyEnrolled         Why = "enrolled"            // verify: the user has a factor the audience allows
	WhyEnrollment       Why = "enrollment_required" // enroll: the policy requires a factor and no grace login is left
	WhyLockedOut        Why = "locked_out"          // deny: the attempt budget is spent
	// deny: the user has a factor, but none they can use now (its provider
	// is disabled, down, refused, or not allowed for the audience); a
	// recovery code still works (RecoveryAvailable)
	WhyProviderUnavailable Why = "provider_unavailable"
)

// Factor names in ChallengeProvider.Factors.
const (
	FactorCode     = "code"     // a typed code, sent as "code" with no factor
	FactorPush     = "push"     // an approval on a phone: verify with factor "push", then poll
	FactorPasscode = "passcode" // a typed code of a provider that also pushes: factor "passcode"
)

// ChallengeInput asks what a user, whose password was just checked, must
// do to finish logging in.
type ChallengeInput struct {
	UserID   string
	Audience Audience
	// DeviceToken is a remembered-device token a verify returned earlier,
	// if the device has one.
	DeviceToken string
	ClientIP    string
}

// ChallengeProvider is a provider the user can verify with or enroll in.
type ChallengeProvider struct {
	Name string
	// Factors are what the provider can ask, from its capabilities: a
	// code-only provider has "code"; one that can push has "push" and
	// "passcode" (the values of VerifyInput.Factor); then each named factor
	// of its Capabilities.Challenges (a code it sends on request).
	Factors []string
	// ChallengeFirst lists the Factors whose verify needs a challenge sent
	// first (StartVerification, then Verify with its TxID): an emailed
	// code. Empty for most providers.
	ChallengeFirst []string
	// CodeInput is the code the user types, as the provider declared it
	// (sdk.Info.CodeInput, checked at its start); for verify, the user's
	// enrollment's own when its setup fixed it (Enrollment.SignInCode, a
	// TOTP enrollment's digits); the zero value when it said nothing.
	CodeInput sdk.CodeInput
}

// ChallengeResult is Challenge's decision.
type ChallengeResult struct {
	Decision Decision
	Why      Why
	// Providers, for verify: the user's active providers the audience
	// allows; for enroll and a grace login: the providers the user may
	// enroll in (a login page can offer to set one up now).
	Providers []ChallengeProvider
	// RecoveryAvailable, for verify and deny: the user has unused
	// recovery codes (a recovery code also ends a lockout).
	RecoveryAvailable bool
	// RetryAfter, for deny: how long until the lockout ends.
	RetryAfter time.Duration
	// GraceLoginsLeft, for a grace login: how many remain after this one.
	GraceLoginsLeft int
	// DeviceID, for a remembered device: which one (see Devices).
	DeviceID string
	// RememberDeviceDays, for verify: the audience's policy lets the user
	// remember this device for so many days (offer "remember this device"
	// with VerifyInput.RememberDevice); 0 when it does not.
	RememberDeviceDays int
}

// Challenge decides what a user must do after the password: be let in,
// answer a second factor (and which), enroll first, or wait out a
// lockout. In order:
//
//  1. a locked-out user is denied (RetryAfter);
//  2. a user with an active factor the audience allows must verify, unless
//     DeviceToken is a valid remembered device for this user and audience;
//  3. a user whose active factors are all unusable now (provider disabled,
//     down, refused by its pin, or not allowed for the audience) is denied
//     (provider_unavailable, with RecoveryAvailable): a factor that cannot
//     be used never turns into "no factor needed";
//  4. otherwise, if the policy does not require a factor, the user is let
//     in (not_required);
//  5. otherwise a grace login is used if one is left (counted atomically
//     in the store), or the user must enroll.
//
// Every decision is written to the audit log (event "challenge") with its
// why; a decision that cannot be audited is not made.
func (f *Framework) Challenge(ctx context.Context, in ChallengeInput) (ChallengeResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return ChallengeResult{}, err
	}
	if in.Audience != AudienceStaff && in.Audience != AudienceClient {
		return ChallengeResult{}, errorf(CodeInvalidRequest, nil, "audience must be %q or %q", AudienceStaff, AudienceClient)
	}
	if err := CheckClientIP(in.ClientIP); err != nil {
		return ChallengeResult{}, err
	}
	// Every wait of the decision (the store's reads, a grace login's
	// count, the audit entry) ends at the decision's deadline, as a
	// verify's does: a hung store answers 503 store_unavailable then,
	// whatever the caller's context (an HTTP request's has no deadline).
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	reg := f.registry()
	pol := reg.policy.For(in.Audience)
	details := map[string]string{}
	now := f.now()

	a, err := f.store.Attempts(ctx, in.UserID, BudgetFactor)
	if err != nil {
		return ChallengeResult{}, errorf(CodeInternal, pastDeadline(ctx, err), "read attempts")
	}
	if a.LockedUntil.After(now) {
		res := ChallengeResult{Decision: DecisionDeny, Why: WhyLockedOut, RetryAfter: a.LockedUntil.Sub(now)}
		if res.RecoveryAvailable, err = f.recoveryAvailable(ctx, in.UserID); err != nil {
			return ChallengeResult{}, err
		}
		details["retry_after"] = strconv.FormatInt(int64((res.RetryAfter+time.Second-1)/time.Second), 10)
		return f.challenged(ctx, in, res, details)
	}

	list, err := f.store.List(ctx, in.UserID)
	if err != nil {
		return ChallengeResult{}, errorf(CodeInternal, pastDeadline(ctx, err), "list enrollments")
	}
	var usable []ChallengeProvider
	var unusable []string
	for _, e := range list {
		switch {
		case e.Status != StatusActive:
		case reg.providerAllowed(e.Provider, in.Audience) && f.serving(reg, e.Provider):
			p := f.challengeProvider(e.Provider)
			p.CodeInput = signInCodeOf(f.providerInfo(e.Provider), e)
			usable = append(usable, p)
		default:
			unusable = append(unusable, e.Provider)
		}
	}
	if len(usable) == 0 && len(unusable) > 0 {
		// Fail closed: the user has a factor, so they need one, even when
		// it cannot be used now (its provider disabled, down, refused by its
		// pin, or not allowed for this audience). Never "not required", and
		// never enrolment in something else: that would let whoever has the
		// password set up their own factor.
		res := ChallengeResult{Decision: DecisionDeny, Why: WhyProviderUnavailable}
		if res.RecoveryAvailable, err = f.recoveryAvailable(ctx, in.UserID); err != nil {
			return ChallengeResult{}, err
		}
		details["unusable_providers"] = strings.Join(unusable, ",")
		return f.challenged(ctx, in, res, details)
	}
	if len(usable) > 0 {
		if in.DeviceToken != "" {
			d, why, err := f.checkDevice(ctx, in, pol, now)
			if err != nil {
				return ChallengeResult{}, err
			}
			if why == "" {
				details["device_id"] = d.ID
				return f.challenged(ctx, in, ChallengeResult{Decision: DecisionAllow, Why: WhyRememberedDevice, DeviceID: d.ID}, details)
			}
			// Not for the caller (it learns only "verify"), for forensics:
			// a token shown for another user is worth a look.
			details["device_token"] = why
		}
		res := ChallengeResult{Decision: DecisionVerify, Why: WhyEnrolled, Providers: usable}
		if pol.RememberDevice.Enabled {
			res.RememberDeviceDays = pol.RememberDevice.Days
		}
		if res.RecoveryAvailable, err = f.recoveryAvailable(ctx, in.UserID); err != nil {
			return ChallengeResult{}, err
		}
		details["providers"] = providerNames(usable)
		return f.challenged(ctx, in, res, details)
	}
	if !pol.Require {
		return f.challenged(ctx, in, ChallengeResult{Decision: DecisionAllow, Why: WhyNotRequired}, details)
	}
	if pol.GraceLogins > 0 {
		used, granted, err := f.store.UseGraceLogin(ctx, in.UserID, in.Audience, pol.GraceLogins)
		if err != nil {
			return ChallengeResult{}, errorf(CodeInternal, pastDeadline(ctx, err), "count grace login")
		}
		details["grace_logins_used"] = itoa(used)
		details["grace_logins"] = itoa(pol.GraceLogins)
		if granted {
			res := ChallengeResult{Decision: DecisionAllow, Why: WhyGraceLogin, GraceLoginsLeft: max(pol.GraceLogins-used, 0),
				Providers: f.enrollable(reg, in.Audience)}
			return f.challenged(ctx, in, res, details)
		}
	}
	res := ChallengeResult{Decision: DecisionEnroll, Why: WhyEnrollment, Providers: f.enrollable(reg, in.Audience)}
	details["providers"] = providerNames(res.Providers)
	return f.challenged(ctx, in, res, details)
}

// enrollable lists the providers a user of the audience may enroll in.
func (f *Framework) enrollable(reg *registry, aud Audience) []ChallengeProvider {
	var out []ChallengeProvider
	for _, n := range reg.allowedProviders(aud) {
		out = append(out, f.challengeProvider(n))
	}
	return out
}

// challenged audits a decision and returns it.
func (f *Framework) challenged(ctx context.Context, in ChallengeInput, res ChallengeResult, details map[string]string) (ChallengeResult, error) {
	f.log.Debug("challenge", "user", in.UserID, "audience", in.Audience, "decision", res.Decision, "why", res.Why)
	if len(details) == 0 {
		details = nil
	}
	if err := f.audit(ctx, AuditEntry{Event: EventChallenge, UserID: in.UserID, Audience: in.Audience,
		Outcome: string(res.Decision), Reason: string(res.Why), ClientIP: in.ClientIP, Details: details}); err != nil {
		return ChallengeResult{}, err
	}
	return res, nil
}

func (f *Framework) recoveryAvailable(ctx context.Context, userID string) (bool, error) {
	n, err := f.store.CountRecoveryCodes(ctx, userID)
	if err != nil {
		return false, errorf(CodeInternal, pastDeadline(ctx, err), "count recovery codes")
	}
	return n > 0, nil
}

// challengeProvider lists a provider's factors from its capabilities. A
// provider that never started has told nothing yet: no factors.
func (f *Framework) challengeProvider(name string) ChallengeProvider {
	info := f.providerInfo(name)
	caps := info.Capabilities
	p := ChallengeProvider{Name: name, Factors: factorsOf(caps), CodeInput: info.CodeInput}
	for _, fa := range p.Factors {
		verifyFactor := fa
		if fa == FactorCode { // verified with no factor: the default one
			verifyFactor = ""
		}
		if caps.NeedsChallenge(sdk.Factor(verifyFactor)) {
			p.ChallengeFirst = append(p.ChallengeFirst, fa)
		}
	}
	return p
}

// serving says whether the registry's provider is running: one that failed
// to start (a pin mismatch, a missing binary), whose process is down, or
// that hangs cannot verify anyone now.
func (f *Framework) serving(reg *registry, name string) bool {
	m, ok := reg.providers[name]
	if !ok {
		return false
	}
	st := m.Status()
	return st.Running && !st.Hung
}

// capabilities are what a provider told of itself when it started; none
// for a provider that is not running or never started.
func (f *Framework) capabilities(name string) sdk.Capabilities {
	return f.providerInfo(name).Capabilities
}

func factorsOf(c sdk.Capabilities) []string {
	out := []string{}
	switch {
	case c.Push && c.Code:
		out = append(out, FactorPush, FactorPasscode)
	case c.Push:
		out = append(out, FactorPush)
	case c.Code:
		out = append(out, FactorCode)
	}
	// A named factor that needs a challenge (texted passcodes beside a
	// push) is a way of its own to sign in: listed, and by
	// challengeProvider in ChallengeFirst too.
	for _, f := range c.Challenges {
		if f != "" && !slices.Contains(out, string(f)) {
			out = append(out, string(f))
		}
	}
	return out
}

func providerNames(ps []ChallengeProvider) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

// Factors says what a provider can ask (as a login decision lists it): for
// pages that verify a user outside a login, such as a step-up before a
// change to the user's factors.
func (f *Framework) Factors(provider string) ChallengeProvider {
	return f.challengeProvider(provider)
}
