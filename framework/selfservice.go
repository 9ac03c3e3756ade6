package framework

import (
	"context"
	"errors"

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
// enrollment in (CodeNotFound), and a step-up that is not a typed code (a
// push, a poll, remember-this-device): a step-up is answered on the spot.
func (f *Framework) RemoveEnrollmentStepUp(ctx context.Context, provider string, stepUp VerifyInput) (VerifyResult, error) {
	if err := ValidateUserID(stepUp.UserID); err != nil {
		return VerifyResult{}, err
	}
	if stepUp.Factor == FactorPush || stepUp.TxID != "" || stepUp.RememberDevice || stepUp.DeviceToken != "" {
		return VerifyResult{}, errorf(CodeInvalidRequest, nil, "a step-up is a code: no push, txid, remember_device or device_token")
	}
	if stepUp.Code == "" {
		return VerifyResult{}, errorf(CodeInvalidRequest, nil, "a step-up needs the code")
	}
	_, err := f.store.Get(ctx, stepUp.UserID, provider)
	if errors.Is(err, ErrNotFound) {
		return VerifyResult{}, errorf(CodeNotFound, nil, "user has no %q enrollment", provider)
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "read enrollment")
	}
	res, err := f.Verify(ctx, stepUp)
	if err != nil || res.Outcome != sdk.Allow {
		return res, err
	}
	if !res.Answered() {
		return res, errNotAnswered
	}
	if err := f.ResetEnrollment(ctx, stepUp.UserID, provider); err != nil && CodeOf(err) != CodeNotFound {
		return res, err // CodeNotFound: a concurrent removal did it
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
