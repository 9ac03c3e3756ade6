package framework

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// errStale: the decision was made on state another request changed first;
// nothing of it was written, and the caller decides again.
var errStale = errors.New("decided on stale state")

// record is where every verification ends, decided or not, and the only
// place that writes its state, settles its attempt, writes its audit
// entries and reports its metrics. t is the attempt reserved at the gate
// (nil for a poll, or when the gate refused); upd is the enrollment with
// the provider's new state, if it changed.
//
// State, audit entries and settlement are one DecisionWrite, committed
// together (and group-committed with concurrent decisions by the store):
// an allow is returned only once all of it is durable, and a decision
// whose audit entry cannot be written is not made. errStale means the
// state was changed (or the recovery code used) by another request first
// and nothing was written.
func (f *Framework) record(ctx context.Context, in VerifyInput, t *ticket, res VerifyResult, upd *Enrollment, err error) (VerifyResult, error) {
	entry := AuditEntry{Event: EventVerify, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience, ClientIP: in.ClientIP}
	outcome, reason := res.Outcome, res.Reason
	switch {
	case err == nil:
		entry.Details = res.Details
	case CodeOf(err) == CodeLockedOut:
		outcome, reason = sdk.Deny, ReasonLockedOut
		switch {
		case errors.Is(err, errPushLimit):
			reason = ReasonPushLimit
		case errors.Is(err, errPushPending):
			reason = ReasonPushPending
		}
	default:
		// No decision, but the attempt is part of the trail.
		outcome, reason = OutcomeError, sdk.Reason(CodeOf(err))
		upd = nil
	}
	entry.Outcome, entry.Reason = string(outcome), string(reason)
	w := DecisionWrite{Update: upd, Audit: []AuditEntry{f.stamp(ctx, entry)}}
	if err == nil && res.Outcome == sdk.Allow {
		w.UseRecovery = res.recovery
	}
	failmode := ""
	if err == nil && (res.Reason == sdk.ReasonFailmodeSafe || res.Reason == sdk.ReasonUnavailable) {
		failmode = map[sdk.Reason]string{sdk.ReasonFailmodeSafe: "safe", sdk.ReasonUnavailable: "secure"}[res.Reason]
		entry.Event, entry.Details = EventFailmode, map[string]string{"failmode": failmode}
		w.Audit = append(w.Audit, f.stamp(ctx, entry))
	}

	var locked *Attempts
	unreservedFailure := false
	switch s := settlementOf(res, err, t != nil); {
	case t != nil && s == settleRefund:
		w.Refund = &Refund{UserID: t.userID, Budget: t.budget, Reservation: t.r}
	case s == settleSuccess:
		w.ResetUser = in.UserID
		if t != nil {
			w.Settled = &Refund{UserID: t.userID, Budget: t.budget, Reservation: t.r}
		}
	case t != nil:
		// Counted when reserved (or, by a store holding reservations in
		// memory, now); nothing else to write but the lockout it started,
		// if it did.
		w.Settled, w.Failed = &Refund{UserID: t.userID, Budget: t.budget, Reservation: t.r}, true
		if t.r.LockedUntil.After(t.r.PrevLockedUntil) {
			locked = &t.r.Attempts
			w.Audit = append(w.Audit, f.stamp(ctx, lockoutEntry(in.UserID, in.Provider, in.Audience, in.ClientIP, *locked)))
		}
	case err == nil && s == settleFailure:
		unreservedFailure = true // a push polled to a refusal: counted below
	}

	// The decision's deadline (decisionContext: the client's going away
	// does not end it) may pass before the store takes its record: a
	// store outage (pastDeadline). A reservation a hung store never
	// answered ends here.
	var settled Attempts
	var cerr error
	if res.takes != "" {
		// The push ends in the write of its answer and of the lockout
		// that answer brings (SettlePush): never one without the other.
		settled, cerr = f.settlePush(ctx, in.UserID, w, res, unreservedFailure)
		unreservedFailure = false
	} else {
		cerr = f.store.CommitDecision(ctx, w)
	}
	cerr = pastDeadline(ctx, cerr)
	if errors.Is(cerr, ErrConflict) {
		return VerifyResult{}, errStale
	}
	if res.takes != "" && errors.Is(cerr, ErrNotFound) {
		return VerifyResult{}, errGone()
	}
	if cerr != nil {
		f.log.Error("decision not recorded", "provider", in.Provider, "user", in.UserID, "error", cerr)
		return VerifyResult{}, errorf(CodeInternal, cerr, "record decision")
	}
	if w.UseRecovery != nil {
		res.Details = WithRecoveryLeft(res.Details, w.UseRecovery.Left)
	}
	if w.Update != nil {
		res.version = w.Update.Version + 1 // CommitDecision's compare-and-swap adds one
	}
	// Guarded: the arguments' boxing alone allocated on every decision
	// with debug off (a quarter of record's own allocations).
	if f.log.IsDebug() {
		f.log.Debug("verify", "provider", in.Provider, "user", in.UserID, "audience", in.Audience, "outcome", outcome, "reason", reason)
	}
	if failmode == "safe" {
		// An allow without a second factor: make it stand out.
		f.log.Warn("verify allowed by failmode safe: the provider's backend was unreachable", "provider", in.Provider, "user", in.UserID)
	}
	if !(f.isPoll(ctx) && outcome == sdk.Pending) { // a push counts once as pending, once as its outcome
		f.observe(ctx, in, outcome, reason)
	}
	if locked != nil {
		f.noteLockout(in.UserID, in.Provider, *locked)
	}
	if unreservedFailure {
		if settled, err = f.settleUnreserved(ctx, in.UserID, res); err != nil {
			return VerifyResult{}, err
		}
	}
	if settled.LockedUntil.After(f.now()) {
		f.noteLockout(in.UserID, in.Provider, settled)
		if aerr := f.audit(ctx, lockoutEntry(in.UserID, in.Provider, in.Audience, in.ClientIP, settled)); aerr != nil {
			return VerifyResult{}, aerr
		}
	}
	if err != nil {
		// The error is the answer. The result beside it may be the
		// provider's decision that err kept from being given (an approved
		// push whose transaction could not be taken): returned, it would
		// read as an allow to a caller that looks at the outcome first.
		return VerifyResult{}, err
	}
	return res, nil
}

// recordSettle records res, the user's answer to the push txID, with the
// deletion of the push (record, VerifyResult.takes): errGone, nothing
// written, when another request ended the push first.
func (f *Framework) recordSettle(ctx context.Context, in VerifyInput, txID string, res VerifyResult, upd *Enrollment) (VerifyResult, error) {
	res.takes, res.TxID = txID, ""
	return f.record(ctx, in, nil, res, upd, nil)
}

// settlePush writes w, a decision that ends the push res.takes, through
// SettlePush, counting the failure when failed; w holds nothing SettlePush
// cannot write (the decision of a push, not of a guess: no ticket, no
// recovery code).
func (f *Framework) settlePush(ctx context.Context, userID string, w DecisionWrite, res VerifyResult, failed bool) (Attempts, error) {
	s := PushSettle{TxID: res.takes, Update: w.Update, Audit: w.Audit}
	if failed {
		s.Failure = &Failure{UserID: userID, Budget: BudgetFactor, LockUntil: f.unreservedLock(f.now(), res)}
	}
	return f.store.SettlePush(ctx, s)
}

// errGone answers a settle of a push another request ended first.
func errGone() error {
	return errorf(CodeNotFound, ErrNotFound, "no pending verification with that id for this user")
}

// lockoutEntry is the audit entry of an attempt that started or extended
// a backoff.
func lockoutEntry(userID, provider string, aud Audience, ip string, a Attempts) AuditEntry {
	return AuditEntry{Event: EventLockout, UserID: userID, Provider: provider, Audience: aud,
		Outcome: "locked", ClientIP: ip,
		Details: map[string]string{"failures": itoa(a.Failures), "locked_until": a.LockedUntil.UTC().Format(time.RFC3339)}}
}

// noteLockout logs and counts a lockout whose audit entry was written.
func (f *Framework) noteLockout(userID, provider string, a Attempts) {
	f.log.Warn("user locked out", "user", userID, "failures", a.Failures, "until", a.LockedUntil)
	f.obs.LockedOut(userID, provider)
}
