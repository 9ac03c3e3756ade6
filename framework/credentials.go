package framework

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// EventCredentialRemoved is the audit event of one credential (a security
// key) removed from an enrollment that holds several.
const EventCredentialRemoved = "enroll.remove"

// A provider with Capabilities.MultipleCredentials (WebAuthn) keeps all
// of a user's credentials in one enrollment. Adding one is an enrollment
// begun on the active enrollment (the add step) and confirmed as usual;
// the enrollment stays active throughout, so the keys already held keep
// working. Removing one and listing them are steps of their own. The host
// application decides who may add or remove: like any change of a
// security setting, it should ask for a second factor first.

// MultipleCredentials reports whether provider keeps several credentials in one
// enrollment.
func (f *Framework) MultipleCredentials(provider string) bool {
	return f.providerInfo(provider).Capabilities.MultipleCredentials
}

// addCredential starts one more credential on an active enrollment.
func (f *Framework) addCredential(ctx context.Context, m *managed, e Enrollment, in EnrollInput) (EnrollResult, error) {
	inputs, err := f.enrollInputs(in.Provider, in.Inputs)
	if err != nil {
		return EnrollResult{}, err
	}
	if err := f.reserveEnrollSend(ctx, in, inputs); err != nil {
		return EnrollResult{}, err
	}
	now := f.now()
	resp, err := f.enrollStep(ctx, m, e, sdk.EnrollRequest{
		User: sdk.User{ID: in.UserID, AccountName: in.AccountName}, Step: sdk.EnrollAdd, Inputs: inputs, Now: now,
	})
	if err != nil {
		return EnrollResult{}, err
	}
	if err := f.checkCodeInput(in.Provider, in.UserID, resp.Display); err != nil {
		return EnrollResult{}, err
	}
	if err := f.storeStep(ctx, e, resp, now); err != nil {
		return EnrollResult{}, err
	}
	f.log.Info("credential add begun", "provider", in.Provider, "user", in.UserID)
	if err := f.audit(ctx, AuditEntry{Event: EventEnrollBegin, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		Outcome: "adding"}); err != nil {
		return EnrollResult{}, err
	}
	return EnrollResult{Status: StatusActive, Display: resp.Display}, nil
}

// enrollStep runs one step on the stored state of e.
func (f *Framework) enrollStep(ctx context.Context, m *managed, e Enrollment, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	state, err := f.seal.open(e.UserID, e.Provider, e.State)
	if err != nil {
		f.log.Error("cannot open stored state", "provider", e.Provider, "user", e.UserID, "error", err)
		return sdk.EnrollResponse{}, errorf(CodeInternal, nil, "the stored %q enrollment cannot be read; an admin must reset it", e.Provider)
	}
	req.State = state
	var resp sdk.EnrollResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Enroll(ctx, req)
		return err
	})
	if err != nil {
		return sdk.EnrollResponse{}, providerErr(e.Provider, err)
	}
	return resp, nil
}

// storeStep writes the state a step returned (compare-and-swap).
func (f *Framework) storeStep(ctx context.Context, e Enrollment, resp sdk.EnrollResponse, now time.Time) error {
	e, err := f.stepped(e, resp, now)
	if err != nil {
		return err
	}
	if _, err := f.store.Update(ctx, e); err != nil {
		return updateErr(err, "enrollment changed concurrently; try again")
	}
	return nil
}

// stepped is e with the state a step returned, sealed, to write with
// compare-and-swap on e's version.
func (f *Framework) stepped(e Enrollment, resp sdk.EnrollResponse, now time.Time) (Enrollment, error) {
	if len(resp.State) == 0 {
		return Enrollment{}, errorf(CodeInternal, nil, "provider %q returned no state", e.Provider)
	}
	sealed, err := f.seal.seal(e.UserID, e.Provider, resp.State)
	if err != nil {
		return Enrollment{}, errorf(CodeInternal, err, "seal state")
	}
	e.State, e.UpdatedAt = sealed, now
	return e, nil
}

// updateErr is the error of a failed Store.Update of an enrollment: a
// conflict (another request changed or removed it first) says msg, which
// tells the caller what to do again; anything else is internal, and a
// store outage among those reads as store_unavailable (ErrorOf). Calling
// a lasting fault a conflict would send the client round again for it.
func updateErr(err error, msg string) error {
	if errors.Is(err, ErrConflict) {
		return errorf(CodeConflict, err, "%s", msg)
	}
	return errorf(CodeInternal, err, "store enrollment")
}

// activeMultiple returns the user's active enrollment in a provider that
// holds several credentials.
func (f *Framework) activeMultiple(ctx context.Context, userID, provider string) (*managed, Enrollment, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, Enrollment{}, err
	}
	m, ok := f.registry().providers[provider]
	if !ok {
		return nil, Enrollment{}, errorf(CodeUnknownProvider, nil, "no active provider named %q", provider)
	}
	if !f.MultipleCredentials(provider) {
		return nil, Enrollment{}, errorf(CodeInvalidRequest, nil, "provider %q holds one credential per user: it has no credentials to list", provider)
	}
	e, err := f.store.Get(ctx, userID, provider)
	if errors.Is(err, ErrNotFound) || (err == nil && e.Status != StatusActive) {
		return nil, Enrollment{}, errorf(CodeNotEnrolled, nil, "user has no active %q enrollment", provider)
	}
	if err != nil {
		return nil, Enrollment{}, errorf(CodeInternal, err, "read enrollment")
	}
	return m, e, nil
}

// Credentials lists the credentials of a user's enrollment in a provider
// that holds several (security keys). Nothing in them is secret.
func (f *Framework) Credentials(ctx context.Context, userID, provider string) (out []sdk.Credential, err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	m, e, err := f.activeMultiple(ctx, userID, provider)
	if err != nil {
		return nil, err
	}
	resp, err := f.enrollStep(ctx, m, e, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: sdk.EnrollList, Now: f.now()})
	if err != nil {
		return nil, err
	}
	return resp.Credentials, nil
}

func checkCredentialID(id string) error {
	if id == "" || len(id) > 2048 {
		return errorf(CodeInvalidRequest, nil, "credential id must be 1-2048 characters")
	}
	return nil
}

// RemoveCredential removes one credential from a user's enrollment; the
// provider refuses to remove the last one (reset the enrollment instead).
// It returns the credentials left.
func (f *Framework) RemoveCredential(ctx context.Context, userID, provider, id string) (out []sdk.Credential, err error) {
	ctx, cancel := checksContext(ctx) // a hung store: store_unavailable at the deadline
	defer cancel()
	defer func() { err = pastDeadline(ctx, err) }()
	if err := checkCredentialID(id); err != nil {
		return nil, err
	}
	m, e, err := f.activeMultiple(ctx, userID, provider)
	if err != nil {
		return nil, err
	}
	now := f.now()
	resp, err := f.enrollStep(ctx, m, e, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: sdk.EnrollRemove, Credential: id, Now: now})
	if err != nil {
		return nil, err
	}
	if !resp.Done {
		return nil, errorf(CodeInvalidRequest, nil, "provider %q did not remove the credential", provider)
	}
	removed, err := f.stepped(e, resp, now)
	if err != nil {
		return nil, err
	}
	// A removed key may be the lost one: the browsers it vouched for are
	// forgotten too, as on a reset, before the removal is written as well
	// as after it (for a device its allow stored meanwhile). Were they
	// forgotten only after, a failure there would leave them remembered
	// with the key already gone, and the retry the caller is told to make
	// would find no such key and forget nothing. A removal refused after
	// this (a conflict, an audit that cannot be written) has forgotten
	// the user's browsers: the safe side, each is asked for a factor once.
	if _, err := f.revokeAllDevices(ctx, userID, EventCredentialRemoved); err != nil {
		return nil, err
	}
	// The removal and its audit entry are one transaction: the store
	// already commits an enrollment's compare-and-swap with audit entries
	// (CommitDecision, as a confirmation does). So a removal whose entry
	// cannot be written is not made, and no entry tells of a removal that
	// lost its compare-and-swap, which auditing first (as Unlock does)
	// could not promise.
	entry := f.stamp(ctx, AuditEntry{Event: EventCredentialRemoved, UserID: userID, Provider: provider, Outcome: "removed"})
	if err := f.store.CommitDecision(ctx, DecisionWrite{Update: &removed, Audit: []AuditEntry{entry}}); err != nil {
		if !errors.Is(err, ErrConflict) {
			f.log.Error("credential removal not recorded", "provider", provider, "user", userID, "error", err)
		}
		return nil, updateErr(err, "enrollment changed concurrently; try again")
	}
	f.log.Info("credential removed", "provider", provider, "user", userID)
	// Again after the removal: a device remembered by an allow recorded
	// before it and stored since (changedSinceAllow covers the one stored
	// after this).
	if _, err := f.revokeAllDevices(ctx, userID, EventCredentialRemoved); err != nil {
		return nil, err
	}
	return resp.Credentials, nil
}
