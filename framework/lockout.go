package framework

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// Budget names one of a user's attempt budgets. Each is a run of
// consecutive failures with its own backoff.
type Budget string

// Budgets. Recovery codes have a budget of their own: they are how a user
// gets back in while the factors' budget is backed off, so a flood of wrong
// recovery codes must not spend the factors' budget (and the other way
// round).
const (
	BudgetFactor   Budget = "factor"   // verifies with any provider, enrollment confirms
	BudgetRecovery Budget = "recovery" // recovery codes
)

// Attempts is a user's run of consecutive failed attempts in one budget.
type Attempts struct {
	Failures    int
	LockedUntil time.Time // zero when not backed off
}

// Reservation is one attempt let through the gate: the budget after it was
// counted, and what LockedUntil was before, so a refund can put it back: a
// DecisionWrite's Refund lowers Failures by one (never below zero) and puts
// LockedUntil back to PrevLockedUntil if it is still the LockedUntil this
// reservation set; a run that was reset meanwhile is left alone.
type Reservation struct {
	Attempts
	PrevLockedUntil time.Time
	// ID is the store's handle on the reservation while it is unsettled:
	// a store that holds reservations in memory until their decisions
	// settle them (SQLite's ledger) finds it by ID; 0 for a store that
	// counted it in the stored budget at once (PostgreSQL).
	ID uint64
}

// AttemptStore keeps the attempt budgets in the store, so they hold across
// replicas and restarts.
//
// The gate is ReserveAttempt: checking the budget and counting the attempt
// happen in one atomic step, before the secret is evaluated. Reading the
// budget, evaluating, and only then recording a failure is a race a burst
// of simultaneous guesses wins.
type AttemptStore interface {
	// Attempts returns the user's current run in a budget; the zero value
	// if none.
	Attempts(ctx context.Context, userID string, b Budget) (Attempts, error)
	// ReserveAttempt atomically: if the budget's LockedUntil is after now,
	// changes nothing and returns ok false with the budget as stored;
	// otherwise adds one to Failures, sets LockedUntil to lockUntil(the new
	// count) and returns ok true. Concurrent calls, in this process or in
	// another replica, are serialized: of any burst at most as many are let
	// through as lockUntil leaves free. The reservation is settled by the
	// DecisionWrite of its decision (Refund, or Settled); until then it
	// counts, in Attempts too. A store of one host may hold it in memory
	// rather than in the stored budget: it then counts only in this
	// process, and is written, when its guess failed, by the decision's
	// commit (a reservation a crash takes back was never answered).
	ReserveAttempt(ctx context.Context, userID string, b Budget, now time.Time, lockUntil func(failures int) time.Time) (r Reservation, ok bool, err error)
	// RecordFailure counts a failure that no reservation counted (a push
	// the user denied, seen when it is polled) and, atomically with it,
	// sets LockedUntil to the later of its current value and
	// lockUntil(the new count).
	RecordFailure(ctx context.Context, userID string, b Budget, lockUntil func(failures int) time.Time) (Attempts, error)
	// ResetAttempts ends the user's runs in every budget (a success, or an
	// admin's unlock or reset).
	ResetAttempts(ctx context.Context, userID string) error
}

// LockoutPolicy is the attempt budget. The defaults follow NIST SP
// 800-63B §5.2.2 and RFC 4226 §7.3: a few free tries, then an exponential
// backoff, and never more than 100 consecutive failures.
type LockoutPolicy struct {
	FreeAttempts int           // attempts before the backoff starts; 5
	Backoff      time.Duration // first backoff, doubling; 30s
	MaxBackoff   time.Duration // cap of one backoff; 1h
	MaxFailures  int           // after this many only an admin's unlock (or a recovery code) unlocks; 100
}

// DefaultLockoutPolicy is used for zero fields of Options.Lockout.
var DefaultLockoutPolicy = LockoutPolicy{FreeAttempts: 5, Backoff: 30 * time.Second, MaxBackoff: time.Hour, MaxFailures: 100}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	d := DefaultLockoutPolicy
	if p.FreeAttempts > 0 {
		d.FreeAttempts = p.FreeAttempts
	}
	if p.Backoff > 0 {
		d.Backoff = p.Backoff
	}
	if p.MaxBackoff > 0 {
		d.MaxBackoff = p.MaxBackoff
	}
	if p.MaxFailures > 0 {
		d.MaxFailures = p.MaxFailures
	}
	return d
}

// forever is the lock of a budget at its cap: until an admin's unlock or a
// recovery code.
const forever = 100 * 365 * 24 * time.Hour

// lockUntil is when a user with this many consecutive failures may try
// again: now for the free attempts, then Backoff doubling up to
// MaxBackoff; "forever" (until reset) from MaxFailures on.
func (p LockoutPolicy) lockUntil(now time.Time, failures int) time.Time {
	if p.MaxFailures > 0 && failures >= p.MaxFailures {
		return now.Add(forever)
	}
	if failures < p.FreeAttempts {
		return time.Time{}
	}
	d := p.Backoff
	for i := p.FreeAttempts; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return now.Add(min(d, p.MaxBackoff))
}

// forBudget is the policy of one budget. Recovery codes back off like the
// factors but have no permanent cap: 80-bit codes cannot be guessed online
// at one try an hour, and a cap would let a stranger who never had a factor
// lock the user out of the very thing that ends a lockout.
func (p LockoutPolicy) forBudget(b Budget) LockoutPolicy {
	if b == BudgetRecovery {
		p.MaxFailures = 0
	}
	return p
}

// ReasonLockedOut denies a verification without asking the provider while
// the user's attempt budget is backed off.
const ReasonLockedOut = sdk.ReasonLockedOut
