package framework

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// ticket is one attempt let through the gate, to be settled once decided.
type ticket struct {
	userID string
	budget Budget
	r      Reservation
	// pre is the enrollment read with the reservation (gateFor), for the
	// first decision only: a decision made again after a conflict reads
	// the newer state. nil when not read.
	pre *prefetched
}

// prefetched is an enrollment read ahead of its decision; e is nil when
// the user has none in the provider.
type prefetched struct{ e *Enrollment }

// EnrollmentReserver is a Store that can read the enrollment a
// verification decides on in the same step as its reservation: one read
// of the store for the two. SQLite implements it (one statement).
type EnrollmentReserver interface {
	// ReserveAttemptFor is ReserveAttempt that also returns the user's
	// enrollment in provider, nil when there is none, as read when the
	// budget was checked; nil too when ok is false.
	ReserveAttemptFor(ctx context.Context, userID string, b Budget, provider string, now time.Time, lockUntil func(failures int) time.Time) (r Reservation, ok bool, e *Enrollment, err error)
}

// gate reserves one attempt in the user's budget before anything secret is
// evaluated: the check and the count are one atomic step in the store, so
// a burst of simultaneous guesses, on one host or spread over replicas,
// gets no more evaluations than the budget leaves free. A refusal is
// CodeLockedOut with the time until the budget lets the next one through.
func (f *Framework) gate(ctx context.Context, userID string, b Budget) (*ticket, error) {
	now := f.now()
	pol := f.lockout.forBudget(b)
	r, ok, err := f.store.ReserveAttempt(ctx, userID, b, now, func(n int) time.Time { return pol.lockUntil(now, n) })
	if err != nil {
		return nil, errorf(CodeInternal, err, "reserve attempt")
	}
	if !ok {
		return nil, lockedOutErr(pol, r.Attempts, now)
	}
	return &ticket{userID: userID, budget: b, r: r}, nil
}

// gateFor is gate for a verification with provider: a store that is an
// EnrollmentReserver reads the enrollment with the reservation, and the
// ticket carries it to the first decide.
func (f *Framework) gateFor(ctx context.Context, userID string, b Budget, provider string) (*ticket, error) {
	er, ok := f.store.(EnrollmentReserver)
	if !ok {
		return f.gate(ctx, userID, b)
	}
	now := f.now()
	pol := f.lockout.forBudget(b)
	r, ok, e, err := er.ReserveAttemptFor(ctx, userID, b, provider, now, func(n int) time.Time { return pol.lockUntil(now, n) })
	if err != nil {
		return nil, errorf(CodeInternal, err, "reserve attempt")
	}
	if !ok {
		return nil, lockedOutErr(pol, r.Attempts, now)
	}
	return &ticket{userID: userID, budget: b, r: r, pre: &prefetched{e}}, nil
}

// checkLocked refuses, without reserving anything, while the factors'
// budget is backed off: for what is not a guess but must not go on during
// a lockout (sending a push).
func (f *Framework) checkLocked(ctx context.Context, userID string) error {
	a, err := f.store.Attempts(ctx, userID, BudgetFactor)
	if err != nil {
		return errorf(CodeInternal, err, "read attempts")
	}
	if now := f.now(); a.LockedUntil.After(now) {
		return lockedOutErr(f.lockout, a, now)
	}
	return nil
}

func lockedOutErr(pol LockoutPolicy, a Attempts, now time.Time) *Error {
	msg := "too many failed attempts; try again later"
	if pol.MaxFailures > 0 && a.Failures >= pol.MaxFailures {
		msg = "too many failed attempts; an admin must unlock the account, or use a recovery code"
	}
	return &Error{Code: CodeLockedOut, Message: msg, RetryAfter: a.LockedUntil.Sub(now)}
}

// settlement is how an attempt ends for its budget.
type settlement int

const (
	// settleSuccess: the user proved the factor; their runs end.
	settleSuccess settlement = iota
	// settleFailure: a guess that failed; it stays counted.
	settleFailure
	// settleRefund: not a guess (a replay, nothing enrolled, a push sent)
	// or no evaluation at all (the provider or its backend did not answer,
	// the store failed): the reservation is given back.
	settleRefund
)

// settlementOf classifies a verification's result for the budget. Wrong
// codes and refused pushes spend the budget; reasons that are not a guess
// do not. A replayed code is not a guess either: whoever sends it saw a
// real code a moment ago (usually the user, clicking twice), and counting
// it would let a double submit lock a user out. A push the user let time
// out or reported as fraud counts: it is how push fatigue is fought.
//
// An attempt that got no answer (a provider timeout, a plugin down, a
// backend unreachable, a store error) is given back too. It taught the
// sender nothing, and no state changed; keeping it would turn every
// outage into a lockout of every user who tried to log in during it (the
// chaos test of a hung plugin locked its users out for the backoff). The
// gate still holds during the outage: while the attempt is in flight its
// reservation counts, so a burst gets no more evaluations than the budget
// leaves free.
//
// code says the attempt carried a secret (it was reserved at the gate: a
// code, not a request for a push or a poll). A backend's refusal of it
// (backend_refused, enrollment_required, denied_by_policy) then counts
// like a wrong code: it is the provider's word that the backend did not
// evaluate the code, which the host cannot check, and a backend (or
// anything answering in its name) that met every wrong passcode with a
// refusal would otherwise give unlimited guesses. The cost falls on a user
// the backend refuses anyway. A request for a push sent no secret, so its
// refusal is not counted. Two reasons stay given back even with a code:
// replayed (see above; the TOTP and HOTP providers say it only of a code
// that matched a step or counter already used, and Duo never does) and
// unavailable (the backend did not answer: an outage, see above).
func settlementOf(res VerifyResult, err error, code bool) settlement {
	switch {
	case err != nil:
		return settleRefund
	case res.Outcome == sdk.Allow:
		return settleSuccess
	case res.Outcome != sdk.Deny:
		return settleRefund
	}
	// The SDK's vocabulary says which reasons count: one table for the
	// host, the guide and provider authors.
	if !res.Reason.CountsAgainstBudget(code) {
		return settleRefund
	}
	return settleFailure
}

// settleUnreserved counts a failure no ticket covers (a push polled to a
// refusal): counted now, and a fraud report locks for the longest backoff
// at once. It returns the budget after it.
func (f *Framework) settleUnreserved(ctx context.Context, userID string, res VerifyResult) (Attempts, error) {
	a, err := f.store.RecordFailure(ctx, userID, BudgetFactor, f.unreservedLock(f.now(), res))
	if err != nil {
		return Attempts{}, errorf(CodeInternal, err, "record failure")
	}
	return a, nil
}

// unreservedLock is the lock of a failure no ticket covers, res, counted
// at now: the policy's backoff, and for a fraud report at least the
// longest one.
func (f *Framework) unreservedLock(now time.Time, res VerifyResult) func(int) time.Time {
	return func(n int) time.Time {
		until := f.lockout.lockUntil(now, n)
		if res.Reason == sdk.ReasonFraud {
			until = maxTime(until, now.Add(f.lockout.MaxBackoff))
		}
		return until
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
