package framework

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// The challenge step (protocol version 2) starts a verification whose
// factor needs something sent first (a code by email) or prepared (a
// security key's options): StartVerification sends it, and Verify with
// the TxID and the user's answer finishes it. A send is an out-of-band
// request like a push and passes the same limit (push.go): one pending per
// user, provider and audience, at most PushLimit.Max per window, and a
// new one only once the pending one's ResendAfter has passed. A send
// checks no secret of the requester's, so it spends no attempt of the
// budget; a locked-out user gets nothing sent.

// EventChallengeSent is the audit event of every StartVerification: its
// outcome is ChallengeSent, ChallengeAlreadySent, deny (reason push_limit,
// locked_out or not_enrolled) or error (reason the error's Code).
const EventChallengeSent = "challenge_sent"

// Outcomes of a challenge, in the audit log and for ChallengeObserver.
const (
	ChallengeSent        = "sent"
	ChallengeAlreadySent = "already_sent"
)

// defaultResendAfter is the resend throttle when a provider names none:
// without one, the pending challenge would be answered until it expires.
const defaultResendAfter = 30 * time.Second

// ChallengeObserver is implemented by an Observer that also counts
// challenges; outcome is ChallengeSent, ChallengeAlreadySent, or the deny
// reason or error Code. It is a separate interface so that an Observer
// written before challenges existed still is one.
type ChallengeObserver interface {
	ChallengeSent(provider, outcome string)
}

// StartInput starts a verification that needs a challenge.
type StartInput struct {
	UserID   string
	Provider string
	Audience Audience
	Factor   string // one of the provider's Capabilities.Challenges (empty for its default), or "push"
	ClientIP string
	// Session identifies the login this start is for (an opaque value of
	// the caller's: the web UI's link id, a hash of the application's
	// session id), at most MaxSession bytes. A push already pending for
	// the user is handed only to a start of the same Session; any other
	// start, and one without a Session, is refused while it waits
	// (joinPush).
	Session string
}

// StartResult is a challenge sent, or the pending one still to answer.
type StartResult struct {
	TxID        string // pass it to Verify with the answer, or poll it
	Message     string // one sentence for the user; never the code
	ExpiresAt   time.Time
	ResendAfter time.Time // a new StartVerification before then answers this one
	Public      string    // what the client needs to answer; never a secret
	// AlreadySent: a challenge sent earlier is still pending and may not be
	// sent again before ResendAfter; nothing was sent now.
	AlreadySent bool
	// Outcome and Reason are set, and TxID empty, when the provider decided
	// at once instead of sending a push (Duo's bypass, a refusal): nothing
	// was sent, and the decision was recorded as a verify.
	Outcome sdk.Outcome
	Reason  sdk.Reason
	// Unprompted, with an allow, says the provider let the user in
	// without asking anything (Duo's bypass), as VerifyResult.Unprompted.
	Unprompted bool
	// EnrollPortalURL is the provider's enrollment page, with Reason
	// enrollment_required (Duo's enroll_portal_url), as EnrollPortalURL
	// gives it for a verify: a web page links to it.
	EnrollPortalURL string
}

// NeedsChallenge says whether Verify of factor on provider needs a
// StartVerification first; false for a provider that is not active.
func (f *Framework) NeedsChallenge(provider, factor string) bool {
	return f.capabilities(provider).NeedsChallenge(sdk.Factor(factor))
}

// StartVerification sends the challenge of a factor that needs one, within
// the send limit, and audits it as EventChallengeSent. A reached limit is
// CodeLockedOut with RetryAfter; a user without an active enrollment is
// CodeNotEnrolled.
func (f *Framework) StartVerification(ctx context.Context, in StartInput) (StartResult, error) {
	if err := ValidateUserID(in.UserID); err != nil {
		return StartResult{}, err
	}
	if err := checkSession(in.Session); err != nil {
		return StartResult{}, err
	}
	if err := CheckClientIP(in.ClientIP); err != nil {
		return StartResult{}, err
	}
	m, err := f.provider(in.Provider, in.Audience)
	if err != nil {
		return StartResult{}, err
	}
	if err := f.checkFactor(m, in.Provider, in.Factor); err != nil {
		return StartResult{}, err
	}
	push := f.isPushStart(in)
	if !push && !f.NeedsChallenge(in.Provider, in.Factor) {
		return StartResult{}, errorf(CodeInvalidRequest, nil, "factor %q of provider %q needs no challenge: verify the answer directly", in.Factor, in.Provider)
	}
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	if push {
		return f.startPushVerification(ctx, m, in)
	}
	var res StartResult
	if err = f.checkLocked(ctx, in.UserID); err == nil {
		res, err = f.sendChallenge(ctx, m, in)
	}
	return f.recordChallenge(ctx, in, res, err)
}

// sendChallenge reserves the send, asks the provider, stores its new state
// and records the transaction, in that order (as startPush does for a push).
func (f *Framework) sendChallenge(ctx context.Context, m *managed, in StartInput) (StartResult, error) {
	// A code is not bound to its login (""); the slot it may find, a push,
	// is (SessionKey).
	tx, pr, refused, err := f.reserveFreeing(ctx, in.UserID, in.Provider, in.Audience, "", SessionKey(in.Session))
	if refused != nil {
		return StartResult{}, refused
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return StartResult{}, errNotEnrolled(in.Provider)
	case err != nil:
		return StartResult{}, errorf(CodeInternal, err, "reserve challenge")
	case pr.Existing != nil:
		// The one pending slot may hold a push of a provider that also
		// sends codes: its id goes only to the login that started it.
		tx.Session = SessionKey(in.Session)
		if err := joinPush(*pr.Existing, tx); err != nil {
			return StartResult{}, err
		}
		return StartResult{TxID: pr.Existing.ID, ExpiresAt: pr.Existing.ExpiresAt, ResendAfter: pr.Existing.ResendAfter, AlreadySent: true}, nil
	case !pr.RetryAt.IsZero():
		return StartResult{}, &Error{Code: CodeLockedOut, Err: errPushLimit, RetryAfter: retryWithin(pr.RetryAt, tx.CreatedAt, f.sendLimit(in.Provider)),
			Message: "too many codes sent to this user; try again later"}
	}
	resp, err := f.callChallenge(ctx, m, in)
	if err == nil && resp.TxID == "" {
		err = errorf(CodeInternal, nil, "provider %q answered a challenge without a transaction id", in.Provider)
	}
	if err != nil {
		// The challenge may have gone out (a timeout): it still counts, but
		// nothing is pending.
		if derr := f.store.DeleteTransaction(ctx, tx.ID); derr != nil {
			f.log.Error("cannot delete a failed challenge's transaction", "provider", in.Provider, "user", in.UserID, "error", derr)
		}
		return StartResult{}, err
	}
	now := f.now()
	expires, resend := resp.ExpiresAt, resp.ResendAfter
	if expires.IsZero() || expires.After(now.Add(transactionTTL)) {
		expires = now.Add(transactionTTL)
	}
	if resend.IsZero() {
		resend = now.Add(defaultResendAfter)
	}
	err = f.store.SendTransaction(ctx, tx.ID, resp.TxID, expires, resend)
	if errors.Is(err, ErrNotFound) { // the enrollment was reset meanwhile
		return StartResult{}, errNotEnrolled(in.Provider)
	}
	if err != nil {
		return StartResult{}, errorf(CodeInternal, err, "store transaction")
	}
	return StartResult{TxID: tx.ID, Message: resp.Message, ExpiresAt: expires, ResendAfter: resend, Public: resp.Public}, nil
}

// IsSendLimit says whether err is StartVerification's (or a push's)
// CodeLockedOut for a reached send limit, rather than a lockout after
// failed attempts: the user may still answer a code sent earlier.
func IsSendLimit(err error) bool { return errors.Is(err, errPushLimit) }

func errNotEnrolled(provider string) error {
	return errorf(CodeNotEnrolled, nil, "the user has no active enrollment in provider %q", provider)
}

// callChallenge calls the provider's Challenge on the stored state and
// writes the state it returns with compare-and-swap, asking again on the
// newer state if another request changed it first.
func (f *Framework) callChallenge(ctx context.Context, m *managed, in StartInput) (sdk.ChallengeResponse, error) {
	for range maxCASAttempts {
		e, err := f.store.Get(ctx, in.UserID, in.Provider)
		if errors.Is(err, ErrNotFound) || (err == nil && e.Status != StatusActive) {
			return sdk.ChallengeResponse{}, errNotEnrolled(in.Provider)
		}
		if err != nil {
			return sdk.ChallengeResponse{}, errorf(CodeInternal, err, "read enrollment")
		}
		state, err := f.seal.open(in.UserID, in.Provider, e.State)
		if err != nil {
			return sdk.ChallengeResponse{}, errorf(CodeInternal, err, "open stored state")
		}
		now := f.now()
		resp, err := f.challenge(ctx, m, in.Provider, sdk.ChallengeRequest{
			User: sdk.User{ID: in.UserID}, State: state, Factor: sdk.Factor(in.Factor), ClientIP: in.ClientIP, Now: now,
		})
		if err != nil {
			return sdk.ChallengeResponse{}, err
		}
		if resp.State == nil {
			return resp, nil
		}
		if len(resp.State) == 0 {
			return sdk.ChallengeResponse{}, errorf(CodeInternal, nil, "provider %q returned an empty state", in.Provider)
		}
		if e.State, err = f.seal.seal(in.UserID, in.Provider, resp.State); err != nil {
			return sdk.ChallengeResponse{}, errorf(CodeInternal, err, "seal state")
		}
		e.UpdatedAt = now
		_, err = f.store.Update(ctx, e)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return sdk.ChallengeResponse{}, errorf(CodeInternal, err, "store state")
		}
		return resp, nil
	}
	return sdk.ChallengeResponse{}, errorf(CodeConflict, nil, "too many concurrent changes to this enrollment; try again")
}

// recordChallenge audits every StartVerification and tells the observer.
// A challenge that cannot be audited is not returned.
func (f *Framework) recordChallenge(ctx context.Context, in StartInput, res StartResult, err error) (StartResult, error) {
	entry := AuditEntry{Event: EventChallengeSent, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		ClientIP: in.ClientIP, Details: map[string]string{"factor": in.Factor}}
	switch {
	case err == nil && res.AlreadySent:
		entry.Outcome = ChallengeAlreadySent
	case err == nil:
		entry.Outcome = ChallengeSent
	case errors.Is(err, errPushLimit):
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonPushLimit)
	case errors.Is(err, errPushPending):
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonPushPending)
	case CodeOf(err) == CodeLockedOut:
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonLockedOut)
	case CodeOf(err) == CodeNotEnrolled:
		entry.Outcome, entry.Reason = string(sdk.Deny), string(ReasonNotEnrolled)
	default:
		entry.Outcome, entry.Reason = string(OutcomeError), string(CodeOf(err))
	}
	if in.Factor == "" {
		entry.Details = nil
	}
	f.log.Debug("challenge", "provider", in.Provider, "user", in.UserID, "outcome", entry.Outcome, "reason", entry.Reason)
	if aerr := f.audit(ctx, entry); aerr != nil {
		return StartResult{}, aerr
	}
	if o, ok := f.obs.(ChallengeObserver); ok {
		label := entry.Outcome
		if entry.Reason != "" {
			label = entry.Reason
		}
		o.ChallengeSent(in.Provider, label)
	}
	return res, err
}

// answeredTx resolves the TxID of a Verify that answers a challenge into
// the provider's transaction id. A factor that needs a challenge cannot be
// answered without one. A TxID of another user, provider or audience, or
// of a push, is CodeNotFound, like an unknown one; an expired one is a deny (decided,
// non-nil) and is deleted.
func (f *Framework) answeredTx(ctx context.Context, in VerifyInput) (providerTxID string, decided *VerifyResult, err error) {
	if in.TxID == "" {
		if f.NeedsChallenge(in.Provider, in.Factor) {
			return "", nil, errorf(CodeInvalidRequest, nil, "factor %q of provider %q needs a challenge first: start a verification, then verify with its txid", in.Factor, in.Provider)
		}
		return "", nil, nil
	}
	if in.Code == "" {
		return "", nil, errorf(CodeInvalidRequest, nil, "code is required with txid (to wait for an answer, poll the verification)")
	}
	if !issuedTxID(in.TxID) {
		return "", nil, errNoPending()
	}
	tx, err := f.store.GetTransaction(ctx, in.UserID, in.TxID)
	// Only a challenge is answered with a code: a push's transaction (no
	// ResendAfter) is polled, never verified against.
	if errors.Is(err, ErrNotFound) || (err == nil && (tx.Provider != in.Provider || tx.Audience != in.Audience || tx.ResendAfter.IsZero())) {
		return "", nil, errNoPending()
	}
	if err != nil {
		return "", nil, errorf(CodeInternal, err, "read transaction")
	}
	if f.now().After(tx.ExpiresAt) {
		// Expired once, for one answer: of answers at once, the others find
		// it gone, as an answer after it does.
		if err := f.takeTx(ctx, tx.ID); err != nil {
			return "", nil, err
		}
		return "", &VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonExpired}, nil
	}
	if tx.ProviderTxID == "" {
		return "", nil, errorf(CodeConflict, nil, "the challenge is still being sent; try again")
	}
	return tx.ProviderTxID, nil, nil
}

// endAnswered deletes an answered challenge once it allowed: its code is
// spent (the provider's state says so too), and the user's one pending
// slot is free for the next login.
func (f *Framework) endAnswered(ctx context.Context, in VerifyInput, res VerifyResult) {
	if in.TxID == "" || res.Outcome != sdk.Allow {
		return
	}
	if err := f.store.DeleteTransaction(ctx, in.TxID); err != nil {
		f.log.Error("cannot delete an answered challenge", "provider", in.Provider, "user", in.UserID, "error", err)
	}
}

// challenge runs the provider's challenge step (sdk.Challenger), its
// errors as a verify's provider errors are.
func (f *Framework) challenge(ctx context.Context, m *managed, provider string, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	var resp sdk.ChallengeResponse
	err := f.call(ctx, m, func(p sdk.Provider) error {
		c, ok := p.(sdk.Challenger)
		if !ok {
			return sdk.Errorf(sdk.KindUnsupported, "provider has no challenge step")
		}
		var err error
		resp, err = c.Challenge(ctx, req)
		return err
	})
	if err != nil {
		return sdk.ChallengeResponse{}, providerErr(provider, err)
	}
	return resp, nil
}
