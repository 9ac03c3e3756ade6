package framework

import (
	"context"
	"errors"

	"github.com/twofactor/twofactor/sdk"
)

// A push is an out-of-band send too, so it can be started like a
// challenge: StartVerification with Factor "push" sends it through the
// same limit (reserveSend) and audits it as EventChallengeSent, not as a
// pending verify; PollVerification, or Verify with its TxID and no code,
// then finishes it. Verify with Factor "push" and no TxID still starts
// one, as before challenges existed.

// pushMessage is what a started push tells the user.
const pushMessage = "We sent a login request to your phone. Approve it to continue."

// isPushStart says whether a StartVerification asks for a push.
func (f *Framework) isPushStart(in StartInput) bool {
	return in.Factor == FactorPush && f.capabilities(in.Provider).Push
}

// startPushVerification sends a push for StartVerification. A provider
// that decides at once (Duo's bypass, a refusal) sends nothing: that
// decision is recorded as the verify it is and returned in Outcome.
func (f *Framework) startPushVerification(ctx context.Context, m *managed, in StartInput) (StartResult, error) {
	vin := VerifyInput{UserID: in.UserID, Provider: in.Provider, Audience: in.Audience, Factor: FactorPush, ClientIP: in.ClientIP, Session: in.Session}
	var vr VerifyResult
	err := f.checkLocked(ctx, in.UserID)
	if err == nil {
		vr, err = f.startPush(ctx, m, vin)
	}
	if err == nil && vr.Reason == ReasonNotEnrolled {
		err = errNotEnrolled(in.Provider) // as for a code: nothing to send to
	}
	if err == nil && vr.Outcome != sdk.Pending {
		vr, err = f.record(ctx, vin, nil, vr, nil, nil)
		if err != nil {
			return StartResult{}, err
		}
		return StartResult{Outcome: vr.Outcome, Reason: vr.Reason, Message: vr.Message, EnrollPortalURL: EnrollPortalURL(vr),
			Unprompted: vr.Outcome == sdk.Allow && vr.Unprompted}, nil
	}
	var res StartResult
	if err == nil {
		res = StartResult{TxID: vr.TxID, Message: pushMessage, AlreadySent: vr.Details["push"] == "already_pending"}
		tx, terr := f.store.GetTransaction(ctx, in.UserID, vr.TxID)
		if terr != nil {
			err = errorf(CodeInternal, terr, "read transaction")
		}
		// A push is never replaced while it is pending: the next may be
		// sent once this one is answered or expired.
		res.ExpiresAt, res.ResendAfter = tx.ExpiresAt, tx.ExpiresAt
	}
	return f.recordChallenge(ctx, in, res, err)
}

// finishPush answers a Verify that names a push's TxID and no code: it
// polls that push, once the TxID is known to be a push of this user,
// provider and audience.
func (f *Framework) finishPush(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return VerifyResult{}, err
	}
	if err := checkRemember(in); err != nil {
		return VerifyResult{}, err
	}
	if in.Factor != "" && in.Factor != FactorPush {
		return VerifyResult{}, errorf(CodeInvalidRequest, nil, "a push's txid is answered by its approval: verify it without a code, or poll it")
	}
	if !issuedTxID(in.TxID) {
		return VerifyResult{}, errNoPending()
	}
	dctx, cancel := decisionContext(ctx) // a hung store: 503 at the deadline
	defer cancel()
	tx, err := f.store.GetTransaction(dctx, in.UserID, in.TxID)
	if errors.Is(err, ErrNotFound) || (err == nil && (tx.Provider != in.Provider || tx.Audience != in.Audience || !tx.ResendAfter.IsZero())) {
		return VerifyResult{}, errNoPending()
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(dctx, err), "read transaction")
	}
	return f.Poll(ctx, PollInput{UserID: in.UserID, TxID: in.TxID, RememberDevice: in.RememberDevice,
		DeviceLabel: in.DeviceLabel, ClientIP: in.ClientIP})
}
