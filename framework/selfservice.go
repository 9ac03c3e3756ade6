package framework

import (
	"context"
	"errors"
	"slices"

	"github.com/twofactor/twofactor/sdk"
)

// RemoveEnrollmentStepUp removes one of the user's own factors when the
// user asks (a self-service security page), after a step-up: stepUp is a
// verification with one of the user's factors or a recovery code, checked
// by Verify like any other (attempt gate, lockout, replay, audit), and
// only its allow removes provider's enrollment, as ResetEnrollment does
// (with the user's remembered devices). It returns the step-up's result;
// a denial removes nothing.
//
// Refused before any code is checked: a provider the user has no
// enrollment in while another factor is active (CodeNotFound), and a
// step-up not answered on the spot (a push, a poll, remember-this-device;
// see checkStepUp). A provider the user has no enrollment in while no
// factor is active is a removal already done: see removedAlready.
func (f *Framework) RemoveEnrollmentStepUp(ctx context.Context, provider string, stepUp VerifyInput) (VerifyResult, error) {
	if err := checkStepUp(stepUp); err != nil {
		return VerifyResult{}, err
	}
	cctx, cancel := checksContext(ctx)
	defer cancel()
	_, err := f.store.Get(cctx, stepUp.UserID, provider)
	if errors.Is(err, ErrNotFound) {
		res, err := f.removedAlready(cctx, stepUp.UserID, provider)
		return res, pastDeadline(cctx, err)
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(cctx, err), "read enrollment")
	}
	res, err := f.stepUp(ctx, stepUp)
	if err != nil || res.Outcome != sdk.Allow {
		return res, err
	}
	if err := f.ResetEnrollment(ctx, stepUp.UserID, provider); err != nil && CodeOf(err) != CodeNotFound {
		return VerifyResult{}, err // CodeNotFound: a concurrent removal did it
	}
	return res, nil
}

// removedAlready answers a removal of an enrollment that is not there.
// With no active factor left it is the removal of the user's last one,
// done already or done but for its clean-up: the retry the caller was
// told to make when a write after the delete failed (the recovery codes'
// drop), or a request of a burst that came after the removal. Before, it
// stopped at not_found and the clean-up never ran: the old recovery codes
// outlived the factor and backed the next one, which was issued none.
// Now it finishes the clean-up (finishRemoval) and is answered as done:
// an allow, without the step-up checked (the factor it would be checked
// with is gone, and the clean-up removes only what no factor backs), so
// its reason is ReasonNotEnrolled and Answered is false.
//
// With an active factor left, nothing is touched: CodeNotFound.
func (f *Framework) removedAlready(ctx context.Context, userID, provider string) (VerifyResult, error) {
	noActive, err := f.finishRemoval(ctx, userID)
	if err != nil {
		return VerifyResult{}, err
	}
	if !noActive {
		return VerifyResult{}, errorf(CodeNotFound, nil, "user has no %q enrollment", provider)
	}
	return VerifyResult{Outcome: sdk.Allow, Reason: ReasonNotEnrolled,
		Message: "no such factor, and none active: the removal is done"}, nil
}

// RemoveCredentialStepUp removes one credential (a security key) of the
// user's enrollment in provider when the user asks, after a step-up checked
// as RemoveEnrollmentStepUp checks one: only its allow removes the key, as
// RemoveCredential does (with the user's remembered devices). It returns
// the step-up's result and, after a removal, the credentials left.
//
// Without the step-up, whoever holds the user's session could remove the
// user's own keys and keep one they added. The admin's RemoveCredential
// stays for support, once the user proved who they are some other way.
//
// Refused before any code is checked, so a step-up is not spent on a
// removal that cannot happen: as Credentials refuses them, an unknown
// provider, one that keeps a single credential and a user without an
// active enrollment in it; a credential the enrollment does not hold
// (CodeNotFound); the last one (CodeInvalidRequest: an admin resets the
// enrollment instead); and a step-up not answered on the spot.
func (f *Framework) RemoveCredentialStepUp(ctx context.Context, provider, id string, stepUp VerifyInput) (VerifyResult, []sdk.Credential, error) {
	if err := checkStepUp(stepUp); err != nil {
		return VerifyResult{}, nil, err
	}
	if err := checkCredentialID(id); err != nil {
		return VerifyResult{}, nil, err
	}
	cctx, cancel := checksContext(ctx)
	defer cancel()
	list, err := f.Credentials(cctx, stepUp.UserID, provider)
	if err != nil {
		return VerifyResult{}, nil, pastDeadline(cctx, err)
	}
	if !slices.ContainsFunc(list, func(c sdk.Credential) bool { return c.ID == id }) {
		return VerifyResult{}, nil, errorf(CodeNotFound, nil, "the %q enrollment holds no such credential", provider)
	}
	if len(list) == 1 {
		return VerifyResult{}, nil, errorf(CodeInvalidRequest, nil, "that is the last credential: an admin resets the enrollment instead")
	}
	res, err := f.stepUp(ctx, stepUp)
	if err != nil || res.Outcome != sdk.Allow {
		return res, nil, err
	}
	left, err := f.RemoveCredential(ctx, stepUp.UserID, provider, id)
	if err != nil {
		return VerifyResult{}, nil, err
	}
	return res, left, nil
}

// RegenerateRecoveryCodesStepUp replaces the user's recovery codes when
// the user asks, after a step-up checked as RemoveEnrollmentStepUp checks
// one: only its allow issues the new set (RegenerateRecoveryCodes), which
// it returns with the step-up's result.
//
// A new set is a way into the account that whoever receives it holds: from
// whoever holds the user's session alone, it would be ten second factors
// of the intruder's own. A user without a confirmed factor is refused
// (CodeNotEnrolled) before any code is checked.
func (f *Framework) RegenerateRecoveryCodesStepUp(ctx context.Context, stepUp VerifyInput) (VerifyResult, []string, error) {
	if err := checkStepUp(stepUp); err != nil {
		return VerifyResult{}, nil, err
	}
	cctx, cancel := checksContext(ctx)
	defer cancel()
	if err := f.needConfirmedFactor(cctx, stepUp.UserID); err != nil {
		return VerifyResult{}, nil, pastDeadline(cctx, err)
	}
	res, err := f.stepUp(ctx, stepUp)
	if err != nil || res.Outcome != sdk.Allow {
		return res, nil, err
	}
	codes, err := f.RegenerateRecoveryCodes(ctx, stepUp.UserID)
	if err != nil {
		return VerifyResult{}, nil, err
	}
	return res, codes, nil
}

// AddFactorStepUp checks a step-up before the user sets up provider as
// another factor from a self-service page: only its allow lets the caller
// open provider's enrollment, which the step-up itself does not start
// (the enrollment is the usual Begin and Confirm, on the page that
// follows). It returns the step-up's result.
//
// Without it, whoever holds the user's session (a stolen cookie, an
// unlocked computer) could add a factor of their own and keep signing in
// after the user changed the password. A user without a confirmed factor
// has nothing to step up with and adds the first one without it: refused
// here (CodeNotEnrolled), as are a provider not running
// (CodeUnknownProvider), one the user already has active
// (CodeAlreadyEnrolled) and a step-up not answered on the spot, all
// before any code is checked.
func (f *Framework) AddFactorStepUp(ctx context.Context, provider string, stepUp VerifyInput) (VerifyResult, error) {
	if err := checkStepUp(stepUp); err != nil {
		return VerifyResult{}, err
	}
	if _, ok := f.registry().providers[provider]; !ok {
		return VerifyResult{}, errorf(CodeUnknownProvider, nil, "no active provider named %q", provider)
	}
	cctx, cancel := checksContext(ctx)
	defer cancel()
	list, err := f.store.List(cctx, stepUp.UserID)
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(cctx, err), "list enrollments")
	}
	active := func(p string) bool {
		return slices.ContainsFunc(list, func(e Enrollment) bool { return e.Status == StatusActive && (p == "" || e.Provider == p) })
	}
	switch {
	case !active(""):
		return VerifyResult{}, errorf(CodeNotEnrolled, nil, "adding a factor with a step-up needs a confirmed factor first")
	case active(provider):
		return VerifyResult{}, errorf(CodeAlreadyEnrolled, nil, "user already has %q", provider)
	}
	return f.stepUp(ctx, stepUp)
}

// checksContext bounds a step-up's checks before its Verify (which has a
// bound of its own) by the decision's deadline: on a store that stopped
// answering, a caller whose context has none (the host's request, an
// embedder's context.Background()) is answered store_unavailable then,
// instead of waiting as long as the connection lives. The caller's own
// cancellation still applies.
func checksContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, decisionTimeout)
}

// checkStepUp refuses, before anything is checked or counted, a step-up
// that is not answered on the spot: a push, a poll, remember-this-device.
// A step-up is the user's answer in the request: a typed code, or a code
// or a security key's answer (Code) to a challenge started before
// (TxID: an emailed code, a WebAuthn assertion), so a user whose factors
// all need a challenge can step up too.
func checkStepUp(stepUp VerifyInput) error {
	if err := ValidateUserID(stepUp.UserID); err != nil {
		return err
	}
	if err := CheckClientIP(stepUp.ClientIP); err != nil {
		return err
	}
	if stepUp.Factor == FactorPush || stepUp.RememberDevice || stepUp.DeviceToken != "" {
		return errorf(CodeInvalidRequest, nil, "a step-up is answered on the spot: no push, remember_device or device_token")
	}
	if stepUp.Code == "" {
		return errorf(CodeInvalidRequest, nil, "a step-up needs the answer: a code, or a security key's credential")
	}
	return nil
}

// stepUp verifies stepUp like any login (attempt gate, lockout, replay,
// audit) and returns its result; an allow that checked no code is an
// error (errNotAnswered), so it never stands for the user.
func (f *Framework) stepUp(ctx context.Context, stepUp VerifyInput) (VerifyResult, error) {
	res, err := f.Verify(ctx, stepUp)
	if err != nil || res.Outcome != sdk.Allow {
		return res, err
	}
	if !res.Answered() {
		// No result beside the error: the allow is not the user's.
		return VerifyResult{}, errNotAnswered
	}
	return res, nil
}

// Answered says whether an allow came from a second factor actually
// answered: not from failmode safe (the provider's backend was down) nor
// without a prompt (Duo's bypass, a device Duo remembers). Only such an
// allow proves the user for a step-up, as for remembering a device.
func (r VerifyResult) Answered() bool {
	return r.Outcome == sdk.Allow && r.Reason == "" && !r.Unprompted
}

var errNotAnswered = errorf(CodeProviderUnavailable, nil,
	"the step-up was allowed without a code being checked (failmode or bypass); try again when the provider answers")
