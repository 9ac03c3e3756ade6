package framework

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
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
func (f *Framework) BeginEnrollment(ctx context.Context, in EnrollInput) (EnrollResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return EnrollResult{}, err
	}
	m, err := f.provider(in.Provider, in.Audience)
	if err != nil {
		return EnrollResult{}, err
	}
	if e, err := f.store.Get(ctx, in.UserID, in.Provider); err == nil && e.Status == StatusActive {
		return EnrollResult{}, errorf(CodeAlreadyEnrolled, nil, "user already has an active %q enrollment; an admin must reset it first", in.Provider)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return EnrollResult{}, errorf(CodeInternal, err, "read enrollment")
	}
	now := f.now()
	var resp sdk.EnrollResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Enroll(ctx, sdk.EnrollRequest{
			User: sdk.User{ID: in.UserID, AccountName: in.AccountName}, Step: sdk.EnrollBegin, Now: now,
		})
		return err
	})
	if err != nil {
		return EnrollResult{}, providerErr(in.Provider, err)
	}
	if len(resp.State) == 0 {
		return EnrollResult{}, errorf(CodeInternal, nil, "provider %q returned no state from enroll begin", in.Provider)
	}
	sealed, err := f.seal.seal(in.UserID, in.Provider, resp.State)
	if err != nil {
		return EnrollResult{}, errorf(CodeInternal, err, "seal state")
	}
	e, err := f.store.PutPending(ctx, Enrollment{
		UserID: in.UserID, Provider: in.Provider, Status: StatusPending, State: sealed, CreatedAt: now, UpdatedAt: now,
	})
	if errors.Is(err, ErrAlreadyActive) {
		return EnrollResult{}, errorf(CodeAlreadyEnrolled, nil, "user already has an active %q enrollment; an admin must reset it first", in.Provider)
	}
	if err != nil {
		return EnrollResult{}, errorf(CodeInternal, err, "store enrollment")
	}
	if resp.Done { // a provider that needs no confirmation
		e.Status, e.ConfirmedAt = StatusActive, now
		if _, err := f.store.Update(ctx, e); err != nil {
			return EnrollResult{}, errorf(CodeConflict, err, "enrollment changed concurrently; begin again")
		}
	}
	f.log.Info("enrollment begun", "provider", in.Provider, "user", in.UserID)
	if err := f.audit(ctx, AuditEntry{Event: EventEnrollBegin, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience, Outcome: string(e.Status)}); err != nil {
		return EnrollResult{}, err
	}
	res := EnrollResult{Status: e.Status, Display: resp.Display}
	if e.Status == StatusActive {
		if res.RecoveryCodes, err = f.firstFactorCodes(ctx, in.UserID); err != nil {
			return EnrollResult{}, err
		}
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
	e, err := f.store.Get(ctx, userID, provider)
	if errors.Is(err, ErrNotFound) {
		return ConfirmResult{}, errorf(CodeNotEnrolled, nil, "no %q enrollment to confirm; begin one first", provider)
	}
	if err != nil {
		return ConfirmResult{}, errorf(CodeInternal, err, "read enrollment")
	}
	if e.Status == StatusActive {
		return ConfirmResult{}, errorf(CodeAlreadyEnrolled, nil, "the %q enrollment is already active", provider)
	}
	now := f.now()
	if now.Sub(e.UpdatedAt) > f.pendingTTL {
		return ConfirmResult{Status: StatusPending, Reason: sdk.ReasonExpired}, nil
	}
	state, err := f.seal.open(userID, provider, e.State)
	if err != nil {
		f.log.Error("cannot open stored state", "provider", provider, "user", userID, "error", err)
		return ConfirmResult{Status: StatusPending, Reason: sdk.ReasonInvalidState}, nil
	}
	var resp sdk.EnrollResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: sdk.EnrollFinish, State: state, Code: code, Now: now})
		return err
	})
	if err != nil {
		return ConfirmResult{}, providerErr(provider, err)
	}
	if !resp.Done {
		reason := resp.Reason
		if reason == "" {
			reason = sdk.ReasonInvalidCode
		}
		f.log.Info("enrollment confirmation refused", "provider", provider, "user", userID, "reason", reason)
		if err := f.audit(ctx, AuditEntry{Event: EventEnrollConfirm, UserID: userID, Provider: provider, Outcome: string(StatusPending), Reason: string(reason)}); err != nil {
			return ConfirmResult{}, err
		}
		return ConfirmResult{Status: StatusPending, Reason: reason}, nil
	}
	if len(resp.State) == 0 {
		return ConfirmResult{}, errorf(CodeInternal, nil, "provider %q returned no state from enroll finish", provider)
	}
	sealed, err := f.seal.seal(userID, provider, resp.State)
	if err != nil {
		return ConfirmResult{}, errorf(CodeInternal, err, "seal state")
	}
	e.Status, e.State, e.UpdatedAt, e.ConfirmedAt = StatusActive, sealed, now, now
	if _, err := f.store.Update(ctx, e); errors.Is(err, ErrConflict) {
		return ConfirmResult{}, errorf(CodeConflict, err, "the enrollment changed while confirming; try again")
	} else if err != nil {
		return ConfirmResult{}, errorf(CodeInternal, err, "store enrollment")
	}
	f.log.Info("enrollment confirmed", "provider", provider, "user", userID)
	if err := f.audit(ctx, AuditEntry{Event: EventEnrollConfirm, UserID: userID, Provider: provider, Outcome: string(StatusActive)}); err != nil {
		return ConfirmResult{}, err
	}
	res := ConfirmResult{Status: StatusActive}
	if res.RecoveryCodes, err = f.firstFactorCodes(ctx, userID); err != nil {
		return ConfirmResult{}, err
	}
	return res, nil
}

// VerifyInput is one answer to a challenge.
type VerifyInput struct {
	UserID   string
	Provider string
	Audience Audience
	Code     string
	Factor   string // "push", "passcode", ...; empty for the provider's default
	ClientIP string
	// RememberDevice asks for a device token with an allow, when the
	// audience's policy allows remembering devices; DeviceLabel (a user
	// agent, at most MaxDeviceLabel characters) names the device in lists.
	RememberDevice bool
	DeviceLabel    string
	// DeviceToken is the remembered-device token this device got from an
	// earlier verify, if it has one. When it names a live remembered device
	// of this user, audience and provider, the provider's own trust token
	// kept with it (Duo's trusted_device_token) goes to the provider, whose
	// backend may then allow without asking. An unknown or expired token
	// changes nothing.
	DeviceToken string

	trustToken string // the provider's token for DeviceToken's device, opened
}

// VerifyResult is the decision.
type VerifyResult struct {
	Outcome sdk.Outcome
	Reason  sdk.Reason
	Message string
	TxID    string
	Details map[string]string
	// DeviceToken, on an allow with VerifyInput.RememberDevice, skips the
	// second factor for this user and audience until it expires; shown
	// once, only its hash is stored. DeviceID names it in Devices.
	DeviceToken string
	DeviceID    string
	// Unprompted: the provider allowed without asking the user anything
	// now (a bypass, a device its backend remembers).
	Unprompted bool

	trustToken string // the provider's token for this device, on an allow
}

// ReasonNotEnrolled denies a user who has no active enrollment in the
// provider; it is decided by the host, not the provider.
const ReasonNotEnrolled sdk.Reason = "not_enrolled"

// maxCASAttempts bounds how often a verify re-reads state that changed
// under it. Each retry re-verifies against the newer state, so a code that
// won a race elsewhere is then seen as replayed.
const maxCASAttempts = 8

// Verify checks a user's answer. An allow is returned only after the
// provider's new state (recording the used code) was stored with
// compare-and-swap, so one code can never let two logins in, on one host
// or across replicas sharing a store. A Pending outcome (a push sent)
// carries a TxID to poll with PollVerification.
func (f *Framework) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	ctx = startVerify(ctx, false)
	if err := ValidateUserID(in.UserID); err != nil {
		return VerifyResult{}, err
	}
	if err := checkRemember(in); err != nil {
		return VerifyResult{}, err
	}
	if in.Provider == RecoveryProvider {
		return f.verifyRecovery(ctx, in)
	}
	m, err := f.provider(in.Provider, in.Audience)
	if err != nil {
		return VerifyResult{}, err
	}
	seen, err := f.checkLocked(ctx, in)
	if err != nil {
		return VerifyResult{}, err
	}
	if in.trustToken, err = f.trustTokenFor(ctx, in); err != nil {
		return VerifyResult{}, err
	}
	started := time.Now()
	res, err := f.verifyWithState(ctx, m, in, "")
	switch {
	case err == nil && res.Reason == ReasonNotEnrolled:
		f.padNotEnrolled(ctx, m, started)
	case err == nil:
		m.latency.observe(time.Since(started))
	}
	if err == nil {
		if err := f.account(ctx, in, res, seen); err != nil {
			return VerifyResult{}, err
		}
	}
	f.observeFailure(ctx, in, err)
	if c := CodeOf(err); noAnswer(c) {
		// No decision was made, but the attempt is part of the trail.
		if aerr := f.audit(ctx, AuditEntry{Event: EventVerify, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
			Outcome: "error", Reason: string(c), ClientIP: in.ClientIP}); aerr != nil {
			return VerifyResult{}, aerr
		}
	}
	if err == nil && res.Outcome == sdk.Allow {
		return f.rememberDevice(ctx, in, res)
	}
	if err != nil || res.Outcome != sdk.Pending {
		return res, err
	}
	if res.TxID == "" {
		return VerifyResult{}, errorf(CodeInternal, nil, "provider %q answered pending without a transaction id", in.Provider)
	}
	now := f.now()
	tx := Transaction{
		ID: newTxID(), UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		ProviderTxID: res.TxID, CreatedAt: now, ExpiresAt: now.Add(transactionTTL),
	}
	if err := f.store.PutTransaction(ctx, tx); errors.Is(err, ErrNotFound) {
		return f.decided(ctx, in, VerifyResult{Outcome: sdk.Deny, Reason: ReasonNotEnrolled})
	} else if err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "store transaction")
	}
	res.TxID = tx.ID
	return res, nil
}

// transactionTTL bounds how long a pending verification can be polled;
// Duo gives up on a push after 60 seconds.
const transactionTTL = 5 * time.Minute

func newTxID() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// PollVerification asks for the outcome of a pending verification that
// Verify started. The transaction belongs to the user who started it;
// another user's id gets CodeNotFound.
func (f *Framework) PollVerification(ctx context.Context, userID, txID string) (VerifyResult, error) {
	ctx = startVerify(ctx, true)
	if err := ValidateUserID(userID); err != nil {
		return VerifyResult{}, err
	}
	tx, err := f.store.GetTransaction(ctx, userID, txID)
	if errors.Is(err, ErrNotFound) {
		return VerifyResult{}, errorf(CodeNotFound, nil, "no pending verification with that id for this user")
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "read transaction")
	}
	in := VerifyInput{UserID: userID, Provider: tx.Provider, Audience: tx.Audience}
	if f.now().After(tx.ExpiresAt) {
		_ = f.store.DeleteTransaction(ctx, tx.ID)
		return f.decided(ctx, in, VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonExpired})
	}
	m, err := f.provider(tx.Provider, tx.Audience)
	if err != nil {
		return VerifyResult{}, err
	}
	res, err := f.verifyWithState(ctx, m, in, tx.ProviderTxID)
	if err != nil {
		f.observeFailure(ctx, in, err)
		return VerifyResult{}, err
	}
	if err := f.account(ctx, in, res, nil); err != nil {
		return VerifyResult{}, err
	}
	if res.Outcome == sdk.Pending {
		res.TxID = tx.ID
		return res, nil
	}
	if err := f.store.DeleteTransaction(ctx, tx.ID); err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "delete transaction")
	}
	res.TxID = ""
	return res, nil
}

// verifyWithState runs one provider Verify against the stored state and
// writes the state the provider returns with compare-and-swap, deciding
// again on the newer state whenever another request changed it first.
// providerTxID polls the provider's pending transaction when set.
func (f *Framework) verifyWithState(ctx context.Context, m *managed, in VerifyInput, providerTxID string) (VerifyResult, error) {
	for range maxCASAttempts {
		e, err := f.store.Get(ctx, in.UserID, in.Provider)
		if errors.Is(err, ErrNotFound) || (err == nil && e.Status != StatusActive) {
			return f.decided(ctx, in, VerifyResult{Outcome: sdk.Deny, Reason: ReasonNotEnrolled})
		}
		if err != nil {
			return VerifyResult{}, errorf(CodeInternal, err, "read enrollment")
		}
		state, err := f.seal.open(in.UserID, in.Provider, e.State)
		if err != nil {
			f.log.Error("cannot open stored state", "provider", in.Provider, "user", in.UserID, "error", err)
			return f.decided(ctx, in, VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidState})
		}
		now := f.now()
		var resp sdk.VerifyResponse
		err = f.call(ctx, m, func(p sdk.Provider) error {
			var err error
			resp, err = p.Verify(ctx, sdk.VerifyRequest{
				User: sdk.User{ID: in.UserID}, State: state, Code: in.Code, Factor: in.Factor,
				TxID: providerTxID, ClientIP: in.ClientIP, Now: now, TrustToken: in.trustToken,
			})
			return err
		})
		if sdk.KindOf(err) == sdk.KindInvalidState {
			f.log.Error("provider refused stored state", "provider", in.Provider, "user", in.UserID, "error", err)
			return f.decided(ctx, in, VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidState})
		}
		if err != nil {
			return VerifyResult{}, providerErr(in.Provider, err)
		}
		res := VerifyResult{Outcome: resp.Outcome, Reason: resp.Reason, Message: resp.Message, TxID: resp.TxID, Details: resp.Details}
		switch res.Outcome {
		case sdk.Allow:
			res.Unprompted, res.trustToken = resp.Unprompted, resp.TrustToken
		case sdk.Deny, sdk.Pending:
		default:
			return VerifyResult{}, errorf(CodeInternal, nil, "provider %q returned unknown outcome %q", in.Provider, res.Outcome)
		}
		if resp.State == nil {
			return f.decided(ctx, in, res)
		}
		if len(resp.State) == 0 {
			return VerifyResult{}, errorf(CodeInternal, nil, "provider %q returned an empty state", in.Provider)
		}
		sealed, err := f.seal.seal(in.UserID, in.Provider, resp.State)
		if err != nil {
			return VerifyResult{}, errorf(CodeInternal, err, "seal state")
		}
		e.State, e.UpdatedAt = sealed, now
		_, err = f.store.Update(ctx, e)
		if errors.Is(err, ErrConflict) {
			continue // someone else changed the state first: decide again on theirs
		}
		if err != nil {
			return VerifyResult{}, errorf(CodeInternal, err, "store state")
		}
		return f.decided(ctx, in, res)
	}
	return VerifyResult{}, errorf(CodeConflict, nil, "too many concurrent changes to this enrollment; try again")
}

// decided records a verification's outcome in the log and the audit log;
// if the audit entry cannot be written, the decision is not returned.
func (f *Framework) decided(ctx context.Context, in VerifyInput, res VerifyResult) (VerifyResult, error) {
	f.log.Info("verify", "provider", in.Provider, "user", in.UserID, "audience", in.Audience, "outcome", res.Outcome, "reason", res.Reason)
	entry := AuditEntry{
		Event: EventVerify, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		Outcome: string(res.Outcome), Reason: string(res.Reason), ClientIP: in.ClientIP, Details: res.Details,
	}
	if err := f.audit(ctx, entry); err != nil {
		return VerifyResult{}, err
	}
	if res.Reason == sdk.ReasonFailmodeSafe || res.Reason == sdk.ReasonUnavailable {
		mode := "secure"
		if res.Reason == sdk.ReasonFailmodeSafe {
			mode = "safe"
			// An allow without a second factor: make it stand out.
			f.log.Warn("verify allowed by failmode safe: the provider's backend was unreachable", "provider", in.Provider, "user", in.UserID)
		}
		entry.Event, entry.Details = EventFailmode, map[string]string{"failmode": mode}
		if err := f.audit(ctx, entry); err != nil {
			return VerifyResult{}, err
		}
	}
	f.observe(ctx, in, res.Outcome, res.Reason)
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
func (f *Framework) Enrollments(ctx context.Context, userID string) ([]EnrollmentInfo, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	list, err := f.store.List(ctx, userID)
	if err != nil {
		return nil, errorf(CodeInternal, err, "list enrollments")
	}
	out := make([]EnrollmentInfo, 0, len(list))
	for _, e := range list {
		out = append(out, EnrollmentInfo{Provider: e.Provider, Status: e.Status, CreatedAt: e.CreatedAt, ConfirmedAt: e.ConfirmedAt})
	}
	return out, nil
}

// ResetEnrollment removes a user's enrollment in a provider, as an admin
// does when a phone is lost. The user can then enroll again.
func (f *Framework) ResetEnrollment(ctx context.Context, userID, provider string) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	err := f.store.Delete(ctx, userID, provider)
	if errors.Is(err, ErrNotFound) {
		return errorf(CodeNotFound, nil, "user has no %q enrollment", provider)
	}
	if err != nil {
		return errorf(CodeInternal, err, "delete enrollment")
	}
	f.log.Info("enrollment reset", "provider", provider, "user", userID)
	if _, err := f.revokeAllDevices(ctx, userID, EventReset); err != nil { // a lost phone: forget its browsers too
		return err
	}
	// A reset is an admin's decision about this user: it also ends a
	// lockout, so the user can enroll again and log in.
	if err := f.attempts.ResetAttempts(ctx, userID); err != nil {
		return errorf(CodeInternal, err, "reset attempts")
	}
	// Recovery codes stand in for a factor; with none left they must not
	// outlive the factors they back up.
	left, err := f.store.List(ctx, userID)
	if err != nil {
		return errorf(CodeInternal, err, "list enrollments")
	}
	if len(left) == 0 {
		if err := f.recovery.ReplaceRecoveryCodes(ctx, userID, nil, f.now()); err != nil {
			return errorf(CodeInternal, err, "drop recovery codes")
		}
	}
	return f.audit(ctx, AuditEntry{Event: EventReset, UserID: userID, Provider: provider, Outcome: "deleted"})
}
