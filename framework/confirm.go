package framework

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// refuseConfirm refuses a confirmation of e before any code is checked:
// an active enrollment, unless it holds several credentials and is
// confirming one more (begun by BeginEnrollment; the provider keeps that
// registration's expiry), is CodeAlreadyEnrolled, and a pending one past
// its lifetime is expired. done says the refusal is the answer.
func (f *Framework) refuseConfirm(e Enrollment, now time.Time) (res ConfirmResult, done bool, err error) {
	adding := e.Status == StatusActive && f.MultipleCredentials(e.Provider)
	if e.Status == StatusActive && !adding {
		return ConfirmResult{}, true, errorf(CodeAlreadyEnrolled, nil, "the %q enrollment is already active", e.Provider)
	}
	if !adding && now.Sub(e.UpdatedAt) > f.pendingTTL {
		return ConfirmResult{Status: StatusPending, Reason: sdk.ReasonExpired}, true, nil
	}
	return ConfirmResult{}, false, nil
}

// confirmOnLatest decides a confirmation of e with code and records it
// (recordConfirm). When another confirmation wrote the enrollment first
// (its compare-and-swap lost: a provider that keeps its count of wrong
// codes in the state, such as email, writes one with each refusal), it
// decides again on the state that one left, as a verify does.
//
// Before, the loser was answered a conflict and given its attempt back:
// its code was checked, but neither the provider's count nor the budget
// kept it, so a burst of wrong codes at once cost one attempt and one of
// the few wrong guesses a mailed code allows. Decided again, each code is
// checked against the count of the ones committed before it (the last
// ones, past the provider's limit, are refused without a check: expired),
// and each refusal is counted. This holds across replicas: the order is
// the store's compare-and-swap on the enrollment, and a decision is only
// ever answered from state that was current when it was committed.
// Serializing confirmations instead would need a lock across replicas for
// what the compare-and-swap already orders.
// sameFactors is recordConfirm's: the activation is written only if no
// factor was activated since the setup was begun.
func (f *Framework) confirmOnLatest(ctx context.Context, t *ticket, m *managed, e Enrollment, code string, now time.Time, sameFactors bool) (ConfirmResult, error) {
	userID, provider, withCode := e.UserID, e.Provider, code != ""
	var res ConfirmResult
	var err error
	for range maxCASAttempts {
		var upd *Enrollment
		res, upd, err = f.confirm(ctx, m, e, code, now)
		out, rerr := f.recordConfirm(ctx, t, userID, provider, withCode, sameFactors, res, upd, err)
		if !errors.Is(rerr, errStale) {
			return out, rerr
		}
		e, rerr = f.store.Get(ctx, userID, provider)
		if rerr != nil {
			break // reset meanwhile, or unreadable: nothing to decide again on
		}
		if _, done, _ := f.refuseConfirm(e, now); done {
			break // activated or expired meanwhile
		}
	}
	// Not decided again: a refusal was still a code checked and refused,
	// and counts as one (without the state it came with); anything else
	// is given back, as a conflict to try again.
	if err == nil && res.Status == StatusPending {
		return f.recordConfirm(ctx, t, userID, provider, withCode, false, res, nil, nil)
	}
	return f.recordConfirm(ctx, t, userID, provider, withCode, false, ConfirmResult{}, nil,
		errorf(CodeConflict, nil, "the enrollment changed while confirming; try again"))
}
