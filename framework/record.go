package framework

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// record is where every verification ends, decided or not, and the only
// place that settles its attempt, writes its audit entries and reports its
// metrics. t is the attempt reserved at the gate (nil for a poll, or when
// the gate refused). The audit entry is written before the budget is
// settled: a decision that cannot be audited is not returned, and one that
// was audited stays in the trail even if settling then fails.
func (f *Framework) record(ctx context.Context, in VerifyInput, t *ticket, res VerifyResult, err error) (VerifyResult, error) {
	entry := AuditEntry{Event: EventVerify, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience, ClientIP: in.ClientIP}
	outcome, reason := res.Outcome, res.Reason
	switch {
	case err == nil:
		entry.Outcome, entry.Reason, entry.Details = string(res.Outcome), string(res.Reason), res.Details
	case CodeOf(err) == CodeLockedOut:
		outcome, reason = sdk.Deny, ReasonLockedOut
		if errors.Is(err, errPushLimit) {
			reason = ReasonPushLimit
		}
		entry.Outcome, entry.Reason = string(outcome), string(reason)
	default:
		// No decision, but the attempt is part of the trail.
		outcome, reason = OutcomeError, sdk.Reason(CodeOf(err))
		entry.Outcome, entry.Reason = string(outcome), string(reason)
	}
	f.log.Debug("verify", "provider", in.Provider, "user", in.UserID, "audience", in.Audience, "outcome", outcome, "reason", reason)
	if aerr := f.audit(ctx, entry); aerr != nil {
		return VerifyResult{}, aerr
	}
	if err == nil && (res.Reason == sdk.ReasonFailmodeSafe || res.Reason == sdk.ReasonUnavailable) {
		mode := "secure"
		if res.Reason == sdk.ReasonFailmodeSafe {
			mode = "safe"
			// An allow without a second factor: make it stand out.
			f.log.Warn("verify allowed by failmode safe: the provider's backend was unreachable", "provider", in.Provider, "user", in.UserID)
		}
		entry.Event, entry.Details = EventFailmode, map[string]string{"failmode": mode}
		if aerr := f.audit(ctx, entry); aerr != nil {
			return VerifyResult{}, aerr
		}
	}
	if !(f.isPoll(ctx) && outcome == sdk.Pending) { // a push counts once as pending, once as its outcome
		f.observe(ctx, in, outcome, reason)
	}

	var locked *Attempts
	var serr error
	switch {
	case t != nil && errors.Is(err, errPushLimit):
		locked, serr = f.settle(ctx, t, settleRefund)
	case t != nil:
		locked, serr = f.settle(ctx, t, settlementOf(res, err))
	case err == nil:
		locked, serr = f.settleUnreserved(ctx, in.UserID, res)
	}
	if serr != nil {
		return VerifyResult{}, serr
	}
	if locked != nil {
		if lerr := f.lockedOut(ctx, in.UserID, in.Provider, in.Audience, in.ClientIP, *locked); lerr != nil {
			return VerifyResult{}, lerr
		}
	}
	return res, err
}

// lockedOut reports an attempt that started or extended a backoff.
func (f *Framework) lockedOut(ctx context.Context, userID, provider string, aud Audience, ip string, a Attempts) error {
	f.log.Warn("user locked out", "user", userID, "failures", a.Failures, "until", a.LockedUntil)
	f.obs.LockedOut(userID, provider)
	return f.audit(ctx, AuditEntry{Event: EventLockout, UserID: userID, Provider: provider, Audience: aud,
		Outcome: "locked", ClientIP: ip,
		Details: map[string]string{"failures": itoa(a.Failures), "locked_until": a.LockedUntil.UTC().Format(time.RFC3339)}})
}
