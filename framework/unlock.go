package framework

import "context"

// EventUnlock is an admin ending a user's lockout (Unlock).
const EventUnlock = "unlock"

// Unlock ends a user's lockout — the backoff and the permanent lock at
// max_failures alike — without touching their enrollments, recovery codes
// or remembered devices: for a user locked out by someone else's guesses,
// where ResetEnrollment would cost them their factor. It is audited
// before it acts: an unlock that cannot be recorded is not made.
func (f *Framework) Unlock(ctx context.Context, userID string) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	if err := f.audit(ctx, AuditEntry{Event: EventUnlock, UserID: userID, Outcome: "unlocked"}); err != nil {
		return err
	}
	if err := f.store.ResetAttempts(ctx, userID); err != nil {
		return errorf(CodeInternal, err, "reset attempts")
	}
	f.log.Info("lockout ended by an admin", "user", userID, "actor", actorOf(ctx))
	return nil
}
