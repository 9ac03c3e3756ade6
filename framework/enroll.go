package framework

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// EnrollInput starts an enrollment.
type EnrollInput struct {
	UserID   string
	Provider string
	Audience Audience
	// AccountName is the label shown in an authenticator app; UserID when
	// empty.
	AccountName string
	// Inputs answer the provider's Info.EnrollInputs (an email address);
	// checked against them before the provider is asked.
	Inputs map[string]string
}

// EnrollResult is what to show the user to continue enrolling.
type EnrollResult struct {
	Status Status
	// Display is sensitive (it may contain a TOTP secret): show it once,
	// never store or log it.
	Display sdk.Display
	// RecoveryCodes are issued when the enrollment is active at once (a
	// provider that needs no confirmation) and it is the user's first
	// factor, as ConfirmEnrollment does; shown this once.
	RecoveryCodes []string
}

// BeginEnrollment starts (or restarts) a user's enrollment in a provider.
// An active enrollment is never replaced: it must be reset first.
//
// On a store that stopped answering it answers store_unavailable at the
// decision's deadline (checksContext), whatever the caller's context.
func (f *Framework) BeginEnrollment(ctx context.Context, in EnrollInput) (EnrollResult, error) {
	ctx, cancel := checksContext(ctx)
	defer cancel()
	res, err := f.beginEnrollment(ctx, in)
	return res, pastDeadline(ctx, err)
}

func (f *Framework) beginEnrollment(ctx context.Context, in EnrollInput) (EnrollResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return EnrollResult{}, err
	}
	m, err := f.provider(in.Provider, in.Audience)
	if err != nil {
		return EnrollResult{}, err
	}
	// The user's enrollments: this provider's, and the other factors the
	// pending enrollment records (Enrollment.Factors).
	list, err := f.store.List(ctx, in.UserID)
	if err != nil {
		return EnrollResult{}, errorf(CodeInternal, err, "read enrollments")
	}
	if e, ok := findEnrollment(list, in.Provider); ok && e.Status == StatusActive {
		if f.MultipleCredentials(in.Provider) { // one more security key
			return f.addCredential(ctx, m, e, in)
		}
		return EnrollResult{}, errorf(CodeAlreadyEnrolled, nil, "user already has an active %q enrollment; an admin must reset it first", in.Provider)
	}
	inputs, err := f.enrollInputs(in.Provider, in.Inputs)
	if err != nil {
		return EnrollResult{}, err
	}
	if err := f.reserveEnrollSend(ctx, in, inputs); err != nil {
		return EnrollResult{}, err
	}
	now := f.now()
	var resp sdk.EnrollResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Enroll(ctx, sdk.EnrollRequest{
			User: sdk.User{ID: in.UserID, AccountName: in.AccountName}, Step: sdk.EnrollBegin, Now: now, Inputs: inputs,
		})
		return err
	})
	if err != nil {
		return EnrollResult{}, providerErr(in.Provider, err)
	}
	if len(resp.State) == 0 {
		return EnrollResult{}, errorf(CodeInternal, nil, "provider %q returned no state from enroll begin", in.Provider)
	}
	if err := f.checkCodeInput(in.Provider, in.UserID, resp.Display); err != nil {
		return EnrollResult{}, err
	}
	sealed, err := f.seal.seal(in.UserID, in.Provider, resp.State)
	if err != nil {
		return EnrollResult{}, errorf(CodeInternal, err, "seal state")
	}
	e, err := f.store.PutPending(ctx, Enrollment{
		UserID: in.UserID, Provider: in.Provider, Status: StatusPending, State: sealed, CreatedAt: now, UpdatedAt: now,
		Factors: FactorsStamp(list, in.Provider), SignInCode: resp.Display.SignInCodeInput,
	})
	if errors.Is(err, ErrAlreadyActive) {
		return EnrollResult{}, errorf(CodeAlreadyEnrolled, nil, "user already has an active %q enrollment; an admin must reset it first", in.Provider)
	}
	if err != nil {
		return EnrollResult{}, errorf(CodeInternal, err, "store enrollment")
	}
	entry := AuditEntry{Event: EventEnrollBegin, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience}
	res := EnrollResult{Status: e.Status, Display: resp.Display}
	if resp.Done { // a provider that needs no confirmation
		// The activation, its audit entry and the first recovery codes
		// are one write (DecisionWrite.FirstCodes).
		e.Status, e.ConfirmedAt = StatusActive, now
		entry.Outcome = string(e.Status)
		codes, first := f.firstCodes(ctx, in.UserID)
		w := DecisionWrite{Update: &e, Audit: []AuditEntry{f.stamp(ctx, entry)}, FirstCodes: first, SameFactors: true}
		if err := f.store.CommitDecision(ctx, w); err != nil {
			return EnrollResult{}, updateErr(err, "enrollment changed concurrently; begin again")
		}
		f.log.Info("enrollment begun", "provider", in.Provider, "user", in.UserID, "status", e.Status)
		res.Status = StatusActive
		if first.Issued {
			res.RecoveryCodes = codes
		}
		return res, nil
	}
	f.log.Info("enrollment begun", "provider", in.Provider, "user", in.UserID)
	entry.Outcome = string(e.Status)
	if err := f.audit(ctx, entry); err != nil {
		return EnrollResult{}, err
	}
	return res, nil
}

// ConfirmResult is the outcome of a confirmation.
type ConfirmResult struct {
	Status Status
	Reason sdk.Reason // why it stayed pending; empty when active
	// RecoveryCodes are issued with the user's first confirmed factor and
	// shown this once; only their hashes are kept.
	RecoveryCodes []string
}

// ConfirmEnrollment finishes a pending enrollment with the user's proof
// (a code from the authenticator app, for TOTP).
func (f *Framework) ConfirmEnrollment(ctx context.Context, userID, provider, code string) (ConfirmResult, error) {
	if err := ValidateUserID(userID); err != nil {
		return ConfirmResult{}, err
	}
	m, ok := f.registry().providers[provider]
	if !ok {
		return ConfirmResult{}, errorf(CodeUnknownProvider, nil, "no active provider named %q", provider)
	}
	// Bounded until the gate's decision context takes over (below).
	cctx, ccancel := checksContext(ctx)
	defer ccancel()
	list, err := f.store.List(cctx, userID)
	if err != nil {
		return ConfirmResult{}, errorf(CodeInternal, pastDeadline(cctx, err), "read enrollments")
	}
	e, ok := findEnrollment(list, provider)
	if !ok {
		return ConfirmResult{}, errorf(CodeNotEnrolled, nil, "no %q enrollment to confirm; begin one first", provider)
	}
	now := f.now()
	if res, done, err := f.refuseConfirm(e, now); done {
		return res, err
	}
	adding := e.Status == StatusActive && f.MultipleCredentials(provider)
	// Before the provider is asked, so no code is spent on it; checked
	// again in the activation's transaction (SameFactors). An added key
	// is not checked: its enrollment is active, so the user had a factor
	// when it was begun, and the caller's step-up decided it.
	if !adding && factorAdded(list, e) {
		return f.staleSetup(cctx, userID, provider)
	}
	// A confirmation checks a secret (a code the user read, or was sent):
	// it passes the same gate as a verify, in the same budget.
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	t, err := f.gate(ctx, userID, BudgetFactor)
	if err != nil {
		if aerr := f.audit(ctx, AuditEntry{Event: EventEnrollConfirm, UserID: userID, Provider: provider,
			Outcome: string(sdk.Deny), Reason: string(ReasonLockedOut)}); aerr != nil {
			return ConfirmResult{}, aerr
		}
		return ConfirmResult{}, err
	}
	return f.confirmOnLatest(ctx, t, m, e, code, now, !adding)
}

// staleSetup answers the confirmation of a pending setup begun before a
// factor of the user's now active (see setupfactors.go) as expired: the
// caller begins it again, under the step-up the user's factors now call
// for. Audited; no attempt is counted, no code was checked.
func (f *Framework) staleSetup(ctx context.Context, userID, provider string) (ConfirmResult, error) {
	res := ConfirmResult{Status: StatusPending, Reason: sdk.ReasonExpired}
	f.log.Warn("setup begun before a factor now active refused", "provider", provider, "user", userID)
	if err := f.audit(ctx, AuditEntry{Event: EventEnrollConfirm, UserID: userID, Provider: provider,
		Outcome: string(res.Status), Reason: string(res.Reason), Details: map[string]string{DetailStaleSetup: "factor_added"}}); err != nil {
		return ConfirmResult{}, err
	}
	return res, nil
}

// DetailStaleSetup is the detail of a refused confirmation that says the
// setup was begun before a factor the user now has (staleSetup).
const DetailStaleSetup = "stale_setup"

// findEnrollment is provider's enrollment in list.
func findEnrollment(list []Enrollment, provider string) (Enrollment, bool) {
	i := slices.IndexFunc(list, func(e Enrollment) bool { return e.Provider == provider })
	if i < 0 {
		return Enrollment{}, false
	}
	return list[i], true
}

// confirm is the decision of a confirmation: the provider checks the
// proof, and on success the enrollment becomes active (compare-and-swap).
func (f *Framework) confirm(ctx context.Context, m *managed, e Enrollment, code string, now time.Time) (ConfirmResult, *Enrollment, error) {
	userID, provider := e.UserID, e.Provider
	state, err := f.seal.open(userID, provider, e.State)
	if err != nil {
		f.log.Error("cannot open stored state", "provider", provider, "user", userID, "error", err)
		return ConfirmResult{Status: StatusPending, Reason: sdk.ReasonInvalidState}, nil, nil
	}
	var resp sdk.EnrollResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: sdk.EnrollFinish, State: state, Code: code, Now: now})
		return err
	})
	if err != nil {
		return ConfirmResult{}, nil, providerErr(provider, err)
	}
	if !resp.Done {
		reason := resp.Reason
		if reason == "" {
			reason = sdk.ReasonInvalidCode
		}
		reason = f.conformReason(provider, userID, VerifyResult{Outcome: sdk.Deny, Reason: reason}).Reason
		if len(resp.State) == 0 {
			return ConfirmResult{Status: StatusPending, Reason: reason}, nil, nil
		}
		// A refused confirm keeps the provider's new state (its own count
		// of wrong codes, a code it spent), written with compare-and-swap
		// like an accepted one; the enrollment stays pending and its
		// pending lifetime does not start again.
		sealed, err := f.seal.seal(userID, provider, resp.State)
		if err != nil {
			return ConfirmResult{}, nil, errorf(CodeInternal, err, "seal state")
		}
		e.State = sealed
		return ConfirmResult{Status: StatusPending, Reason: reason}, &e, nil
	}
	if len(resp.State) == 0 {
		return ConfirmResult{}, nil, errorf(CodeInternal, nil, "provider %q returned no state from enroll finish", provider)
	}
	sealed, err := f.seal.seal(userID, provider, resp.State)
	if err != nil {
		return ConfirmResult{}, nil, errorf(CodeInternal, err, "seal state")
	}
	if e.Status != StatusActive { // an added credential keeps the first confirmation's time
		e.ConfirmedAt = now
	}
	e.Status, e.State, e.UpdatedAt = StatusActive, sealed, now
	return ConfirmResult{Status: StatusActive}, &e, nil
}

// recordConfirm writes a confirmation's outcome in one DecisionWrite: the
// activated enrollment (compare-and-swap), the audit entry and the
// settlement of its attempt; errStale when the compare-and-swap lost, and
// nothing was written. A wrong code stays counted, anything else is
// given back: a confirmation that succeeds does not end the user's run of
// failures as a verify does, since a factor being enrolled proves nothing
// about the factors already active. withCode says the confirmation sent
// a code: a check of an activation that sent none guesses nothing, and
// its "waiting" is given back (sdk.ReasonWaiting). sameFactors says an
// activation is written only if no factor was activated since the setup
// was begun (DecisionWrite.SameFactors); one that was is answered as
// staleSetup answers.
func (f *Framework) recordConfirm(ctx context.Context, t *ticket, userID, provider string, withCode, sameFactors bool, res ConfirmResult, upd *Enrollment, err error) (ConfirmResult, error) {
	entry := AuditEntry{Event: EventEnrollConfirm, UserID: userID, Provider: provider, Outcome: string(res.Status), Reason: string(res.Reason)}
	if err != nil {
		entry.Outcome, entry.Reason, upd = string(OutcomeError), string(CodeOf(err)), nil
	}
	w := DecisionWrite{Update: upd, Audit: []AuditEntry{f.stamp(ctx, entry)}}
	// An activation writes the user's first recovery codes with it
	// (DecisionWrite.FirstCodes): a factor is never active without them.
	var codes []string
	if err == nil && res.Status == StatusActive && upd != nil {
		codes, w.FirstCodes = f.firstCodes(ctx, userID)
		w.SameFactors = sameFactors
	}
	var locked *Attempts
	switch s := settlementOf(VerifyResult{Outcome: sdk.Deny, Reason: res.Reason}, err, withCode); {
	case err == nil && res.Status == StatusActive, s == settleRefund:
		w.Refund = &Refund{UserID: t.userID, Budget: t.budget, Reservation: t.r}
	default:
		w.Settled, w.Failed = &Refund{UserID: t.userID, Budget: t.budget, Reservation: t.r}, true
		if t.r.LockedUntil.After(t.r.PrevLockedUntil) {
			locked = &t.r.Attempts
			w.Audit = append(w.Audit, f.stamp(ctx, lockoutEntry(userID, provider, "", "", *locked)))
		}
	}
	if cerr := f.store.CommitDecision(ctx, w); errors.Is(cerr, ErrConflict) {
		// Nothing was written. A factor activated since the reads is a
		// setup to begin again; anything else, confirmOnLatest decides
		// again on the state the winner left.
		if w.SameFactors {
			if list, lerr := f.store.List(ctx, userID); lerr == nil && factorAdded(list, *upd) {
				f.log.Warn("setup begun before a factor now active refused", "provider", provider, "user", userID)
				return f.recordConfirm(ctx, t, userID, provider, withCode, false,
					ConfirmResult{Status: StatusPending, Reason: sdk.ReasonExpired}, nil, nil)
			}
		}
		return ConfirmResult{}, errStale
	} else if cerr != nil {
		return ConfirmResult{}, errorf(CodeInternal, cerr, "record confirmation")
	}
	f.log.Info("enrollment confirmation", "provider", provider, "user", userID, "outcome", entry.Outcome, "reason", entry.Reason)
	if locked != nil {
		f.noteLockout(userID, provider, *locked)
	}
	if err != nil {
		return ConfirmResult{}, err
	}
	if w.FirstCodes != nil && w.FirstCodes.Issued {
		res.RecoveryCodes = codes
	}
	return res, nil
}

// EnrollmentInfo is what callers may see of an enrollment: never its state.
type EnrollmentInfo struct {
	Provider    string
	Status      Status
	CreatedAt   time.Time
	ConfirmedAt time.Time
}

// Enrollments lists a user's enrollments.
func (f *Framework) Enrollments(ctx context.Context, userID string) (out []EnrollmentInfo, err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	list, err := f.store.List(ctx, userID)
	if err != nil {
		return nil, errorf(CodeInternal, err, "list enrollments")
	}
	out = make([]EnrollmentInfo, 0, len(list))
	for _, e := range list {
		out = append(out, EnrollmentInfo{Provider: e.Provider, Status: e.Status, CreatedAt: e.CreatedAt, ConfirmedAt: e.ConfirmedAt})
	}
	return out, nil
}

// ResetEnrollment removes a user's enrollment in a provider, as an admin
// does when a phone is lost. The user can then enroll again.
func (f *Framework) ResetEnrollment(ctx context.Context, userID, provider string) (err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	if _, err := f.store.Get(ctx, userID, provider); errors.Is(err, ErrNotFound) {
		return f.resetGone(ctx, userID, provider)
	} else if err != nil {
		return errorf(CodeInternal, err, "read enrollment")
	}
	// Audited before it acts, as Unlock: a reset switches a factor off,
	// and one that cannot be recorded is not made. Not in one transaction
	// with its entry: a reset is several writes (the enrollment, the
	// remembered devices, the attempt budgets, perhaps the recovery codes)
	// that no one store operation makes, and adding one to both stores
	// for this would buy little. If a write fails after the entry, the
	// log tells of a reset that did not (wholly) happen, and the admin is
	// answered an error to run it again: the safe side, where the other
	// order leaves a factor switched off with no entry saying so.
	if err := f.audit(ctx, AuditEntry{Event: EventReset, UserID: userID, Provider: provider, Outcome: "deleted"}); err != nil {
		return err
	}
	// A lost phone: forget its browsers too. Before the delete, so that a
	// failure here leaves the enrollment for the admin's second run, which
	// would otherwise find nothing to reset (not_found) and leave them;
	// again after it, for a device remembered by a verify decided before
	// the delete.
	if _, err := f.revokeAllDevices(ctx, userID, EventReset); err != nil {
		return err
	}
	err = f.store.Delete(ctx, userID, provider)
	if errors.Is(err, ErrNotFound) { // another reset removed it meanwhile
		return f.resetGone(ctx, userID, provider)
	}
	if err != nil {
		return errorf(CodeInternal, err, "delete enrollment")
	}
	f.log.Info("enrollment reset", "provider", provider, "user", userID)
	if _, err := f.revokeAllDevices(ctx, userID, EventReset); err != nil {
		return err
	}
	// A reset is an admin's decision about this user: it also ends a
	// lockout, so the user can enroll again and log in.
	if err := f.store.ResetAttempts(ctx, userID); err != nil {
		return errorf(CodeInternal, err, "reset attempts")
	}
	// Recovery codes stand in for a factor; with no active one left they
	// must not outlive the factors they back up. A pending enrollment
	// beside (begun and abandoned, or begun by whoever holds the session)
	// backs up nothing: were the codes kept for it, a stolen sheet would
	// log in, and the next factor confirmed would find codes and issue
	// none (DecisionWrite.FirstCodes). Dropped here, that factor gets a fresh set.
	// The check and the drop are one store operation: a factor confirmed
	// between a separate check and drop lost the codes it was just shown.
	if _, err := f.store.DropRecoveryCodesUnlessActive(ctx, userID); err != nil {
		return errorf(CodeInternal, err, "drop recovery codes")
	}
	return nil
}

// resetGone answers a reset of an enrollment that is not there
// (CodeNotFound), after finishing what a reset run before it may have
// left when one of its writes failed after the delete (finishRemoval).
// With an active factor left, nothing is touched: the request names no
// enrollment, and changes nothing of the user's.
func (f *Framework) resetGone(ctx context.Context, userID, provider string) error {
	if _, err := f.finishRemoval(ctx, userID); err != nil {
		return err
	}
	return errorf(CodeNotFound, nil, "user has no %q enrollment", provider)
}

// finishRemoval finishes, for a user without an active factor, what a
// removal of the last one may have left when one of its writes failed
// after the delete: such a user keeps neither remembered devices (each
// was earned with a factor since removed, and would skip the next one)
// nor recovery codes (they would back the next factor, which would then
// be issued none). It reports whether the user has no active factor;
// with one, it touches nothing.
//
// Safe to run at once from any number of requests on any replicas: the
// drop is one store operation that keeps the codes of a user a factor
// became active for meanwhile (DropRecoveryCodesUnlessActive), and
// forgetting devices twice forgets nothing more. Only the run that
// dropped codes audits it.
func (f *Framework) finishRemoval(ctx context.Context, userID string) (noActive bool, err error) {
	list, err := f.store.List(ctx, userID)
	if err != nil {
		return false, errorf(CodeInternal, err, "list enrollments")
	}
	if slices.ContainsFunc(list, func(e Enrollment) bool { return e.Status == StatusActive }) {
		return false, nil
	}
	if _, err := f.revokeAllDevices(ctx, userID, EventReset); err != nil {
		return false, err
	}
	dropped, err := f.store.DropRecoveryCodesUnlessActive(ctx, userID)
	if err != nil {
		return false, errorf(CodeInternal, err, "drop recovery codes")
	}
	if dropped {
		f.log.Warn("recovery codes backing no factor dropped", "user", userID)
		if err := f.audit(ctx, AuditEntry{Event: EventReset, UserID: userID, Provider: RecoveryProvider, Outcome: "deleted",
			Reason: "no_active_factor"}); err != nil {
			return false, err
		}
	}
	return true, nil
}
