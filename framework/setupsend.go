package framework

import (
	"context"
	"errors"

	"github.com/twofactor/twofactor/sdk"
)

// A setup that needs a code the provider sends on request (Duo's texted
// passcodes, to confirm the device of a user Duo already knew) asks for
// it with SendSetupCode: the provider's Challenge of that factor on the
// pending enrollment's state. It is an enrollment's send, so it passes
// the enrollment sends' limit of the user (enrollSuffix, max_pushes per
// window, counted before the provider is asked, whether or not it then
// sends), and a locked-out user gets nothing sent. The code it sends is
// then typed into ConfirmEnrollment, in the factors' budget.

// EventSetupSend is the audit event of every SendSetupCode: outcome sent,
// deny (push_limit, locked_out) or error (the error's Code).
const EventSetupSend = "enroll.send"

// SetupSendInput asks the provider to send a code for a pending setup.
type SetupSendInput struct {
	UserID   string
	Provider string
	Factor   string // a named factor of the provider's Capabilities.Challenges
	ClientIP string
}

// SetupSendResult is a code sent for a setup.
type SetupSendResult struct {
	Message string // one sentence for the user; never the code
}

// SendSetupCode sends the code of factor for user's pending setup of
// provider. No pending setup is CodeNotEnrolled; a factor the provider
// does not send on request is CodeInvalidRequest; a full window is
// CodeLockedOut with RetryAfter.
func (f *Framework) SendSetupCode(ctx context.Context, in SetupSendInput) (SetupSendResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return SetupSendResult{}, err
	}
	if err := CheckClientIP(in.ClientIP); err != nil {
		return SetupSendResult{}, err
	}
	m, ok := f.registry().providers[in.Provider]
	if !ok {
		return SetupSendResult{}, errorf(CodeUnknownProvider, nil, "no active provider named %q", in.Provider)
	}
	if in.Factor == "" || !f.NeedsChallenge(in.Provider, in.Factor) {
		return SetupSendResult{}, errorf(CodeInvalidRequest, nil, "provider %q sends no code of factor %q on request", in.Provider, in.Factor)
	}
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	res, err := f.sendSetupCode(ctx, m, in)
	entry := AuditEntry{Event: EventSetupSend, UserID: in.UserID, Provider: in.Provider, ClientIP: in.ClientIP,
		Outcome: ChallengeSent, Details: map[string]string{"factor": in.Factor}}
	switch {
	case err == nil:
	case errors.Is(err, errPushLimit):
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonPushLimit)
	case CodeOf(err) == CodeLockedOut:
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonLockedOut)
	default:
		entry.Outcome, entry.Reason = string(OutcomeError), string(CodeOf(err))
	}
	if aerr := f.audit(ctx, entry); aerr != nil {
		return SetupSendResult{}, aerr
	}
	return res, err
}

func (f *Framework) sendSetupCode(ctx context.Context, m *managed, in SetupSendInput) (SetupSendResult, error) {
	e, err := f.store.Get(ctx, in.UserID, in.Provider)
	if errors.Is(err, ErrNotFound) || (err == nil && e.Status != StatusPending) {
		return SetupSendResult{}, errorf(CodeNotEnrolled, nil, "no pending %q setup to send a code for; begin one first", in.Provider)
	}
	if err != nil {
		return SetupSendResult{}, errorf(CodeInternal, err, "read enrollment")
	}
	if err := f.checkLocked(ctx, in.UserID); err != nil {
		return SetupSendResult{}, err
	}
	now := f.now()
	limit := f.sendLimit(in.Provider)
	retry, err := f.store.CountSends(ctx, []SendKey{{Subject: in.UserID, Provider: in.Provider + enrollSuffix}}, now, limit)
	if err != nil {
		return SetupSendResult{}, errorf(CodeInternal, err, "count the setup's send")
	}
	if !retry.IsZero() {
		return SetupSendResult{}, &Error{Code: CodeLockedOut, Err: errPushLimit, RetryAfter: retryWithin(retry, now, limit),
			Message: "too many codes sent for this setup; try again later"}
	}
	state, err := f.seal.open(in.UserID, in.Provider, e.State)
	if err != nil {
		return SetupSendResult{}, errorf(CodeInternal, err, "open stored state")
	}
	resp, err := f.challenge(ctx, m, in.Provider, sdk.ChallengeRequest{User: sdk.User{ID: in.UserID}, State: state,
		Factor: sdk.Factor(in.Factor), ClientIP: in.ClientIP, Now: now})
	if err != nil {
		return SetupSendResult{}, err
	}
	if resp.State != nil {
		// A setup's state changes only at its begin and confirmation:
		// a code the provider keeps would have to be written with them.
		return SetupSendResult{}, errorf(CodeInternal, nil, "provider %q changed a pending setup's state when sending a code", in.Provider)
	}
	return SetupSendResult{Message: resp.Message}, nil
}
