package framework

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// Attempts is a user's run of consecutive failed verifications, across all
// providers.
type Attempts struct {
	Failures    int
	LockedUntil time.Time // zero when not backed off
}

// AttemptStore keeps the attempt budget in the store, so it holds across
// replicas and restarts.
type AttemptStore interface {
	// Attempts returns the user's current run; the zero value if none.
	Attempts(ctx context.Context, userID string) (Attempts, error)
	// RecordFailure adds one failure and, in the same transaction, sets
	// LockedUntil to lockUntil(the new count) — so two replicas counting at
	// once cannot lose a failure.
	RecordFailure(ctx context.Context, userID string, lockUntil func(failures int) time.Time) (Attempts, error)
	// ResetAttempts ends the run (a success, or an admin's reset).
	ResetAttempts(ctx context.Context, userID string) error
}

// LockoutPolicy is the attempt budget. The defaults follow NIST SP
// 800-63B §3.2.2 and RFC 4226 §7.3: a few free tries, then an exponential
// backoff, and never more than 100 consecutive failures.
type LockoutPolicy struct {
	FreeAttempts int           // failures before the backoff starts; 5
	Backoff      time.Duration // first backoff, doubling; 30s
	MaxBackoff   time.Duration // cap of one backoff; 1h
	MaxFailures  int           // after this many only an admin reset (or a recovery code) unlocks; 100
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

// lockUntil is when a user with this many consecutive failures may try
// again: now for the free attempts, then Backoff doubling up to
// MaxBackoff; "forever" (until reset) from MaxFailures on.
func (p LockoutPolicy) lockUntil(now time.Time, failures int) time.Time {
	if failures >= p.MaxFailures {
		return now.Add(100 * 365 * 24 * time.Hour)
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

// ReasonLockedOut denies a verification without asking the provider while
// the user's attempt budget is spent.
const ReasonLockedOut = sdk.ReasonLockedOut

// countsAsFailure says whether a deny spends the attempt budget: wrong
// codes and refused pushes do; reasons that are not a guess do not. A
// replayed code is not a guess either: whoever sends it saw a real code a
// moment ago (usually the user, clicking twice), and counting it would let
// a double submit lock a user out.
func countsAsFailure(r VerifyResult) bool {
	if r.Outcome != sdk.Deny {
		return false
	}
	switch r.Reason {
	case ReasonNotEnrolled, sdk.ReasonReplayed, sdk.ReasonInvalidState, sdk.ReasonUnavailable, sdk.ReasonExpired,
		sdk.ReasonTimeout, ReasonLockedOut, sdk.ReasonDeniedByPolicy, sdk.ReasonBackendRefused, sdk.ReasonEnrollmentRequired:
		return false
	}
	return true
}

// checkLocked refuses a verification while the user is backed off. It
// returns what it read, for account.
func (f *Framework) checkLocked(ctx context.Context, in VerifyInput) (*Attempts, error) {
	a, err := f.attempts.Attempts(ctx, in.UserID)
	if err != nil {
		return nil, errorf(CodeInternal, err, "read attempts")
	}
	now := f.now()
	if !a.LockedUntil.After(now) {
		return &a, nil
	}
	retry := a.LockedUntil.Sub(now)
	msg := "too many failed attempts; try again later"
	if a.Failures >= f.lockout.MaxFailures {
		msg = "too many failed attempts; an admin must reset the account, or use a recovery code"
	}
	if aerr := f.audit(ctx, AuditEntry{Event: EventVerify, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		Outcome: string(sdk.Deny), Reason: string(ReasonLockedOut), ClientIP: in.ClientIP}); aerr != nil {
		return nil, aerr
	}
	f.observe(ctx, in, sdk.Deny, ReasonLockedOut)
	return nil, &Error{Code: CodeLockedOut, Message: msg, RetryAfter: retry}
}

// account updates the attempt budget after a decision. seen is what
// checkLocked read before it (nil when nothing was read): an allow need
// not clear a budget that was clean then, which saves a write on nearly
// every allow. A failure counted by a concurrent request after that read
// then stays counted, which errs on the safe side.
func (f *Framework) account(ctx context.Context, in VerifyInput, res VerifyResult, seen *Attempts) error {
	switch {
	case res.Outcome == sdk.Allow:
		if seen != nil && seen.Failures == 0 && seen.LockedUntil.IsZero() {
			return nil
		}
		if err := f.attempts.ResetAttempts(ctx, in.UserID); err != nil {
			return errorf(CodeInternal, err, "reset attempts")
		}
	case countsAsFailure(res):
		now := f.now()
		a, err := f.attempts.RecordFailure(ctx, in.UserID, func(n int) time.Time { return f.lockout.lockUntil(now, n) })
		if err != nil {
			return errorf(CodeInternal, err, "record failure")
		}
		if a.LockedUntil.After(now) {
			f.log.Warn("user locked out", "user", in.UserID, "failures", a.Failures, "until", a.LockedUntil)
			f.obs.LockedOut(in.UserID, in.Provider)
			return f.audit(ctx, AuditEntry{Event: EventLockout, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
				Outcome: "locked", ClientIP: in.ClientIP,
				Details: map[string]string{"failures": itoa(a.Failures), "locked_until": a.LockedUntil.UTC().Format(time.RFC3339)}})
		}
	}
	return nil
}
