package framework

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofactor/twofactor/sdk"
)

// Verification is a pipeline, in this order and nowhere else:
//
//  1. validate: the request alone (user id, remember-device fields), and
//     the provider and audience;
//  2. gate: one attempt reserved in the user's budget, atomically, before
//     anything secret is evaluated (gate.go);
//  3. decide: the provider evaluates against the stored state (decide,
//     startPush);
//  4. record: the new state (compare-and-swap), the settlement of the
//     attempt and the audit entries committed as one transaction, the
//     metrics told — in one place (record.go), on a context of its own, so
//     a client that leaves does not leave a decision half-recorded. A
//     stale state sends the request back to decide.

// VerifyInput is one answer to a challenge.
type VerifyInput struct {
	UserID   string
	Provider string
	Audience Audience
	Code     string
	Factor   string // "push", "passcode", ...; empty for the provider's default
	// TxID answers the challenge StartVerification sent (send.go); a factor
	// that needs a challenge is refused without one.
	TxID     string
	ClientIP string
	// Session identifies the login a push started by this verify (no
	// code, a provider that pushes) is for, as StartInput.Session.
	Session string
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
	// failures is the user's run of failed attempts before this one, as
	// the gate counted it (sdk.VerifyRequest.Failures).
	failures int
}

// VerifyResult is the decision. Every call that returns one with an
// error returns it zero: only a nil error carries a decision.
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
	// recovery is the recovery code an allow uses up, in its record.
	recovery *RecoveryUse
	// version is the enrollment's version the decision's record wrote
	// (its compare-and-swap), 0 when it wrote none: rememberDevice checks
	// that the enrollment is still that one once its device is stored.
	version int64
	// takes is the push transaction this decision ends, deleted in its
	// record's own write (recordSettle); "" for none.
	takes string
}

// ReasonPushLimit denies a push while the user's push limit is reached;
// the caller gets CodeLockedOut with RetryAfter.
const ReasonPushLimit = sdk.ReasonPushLimit

// ReasonPushPending denies a push while another login's push waits for
// the user's answer (pushsession.go); the caller gets CodeLockedOut with
// RetryAfter.
const ReasonPushPending = sdk.ReasonPushPending

// ReasonNotEnrolled denies a user who has no active enrollment in the
// provider; it is decided by the host, not the provider.
const ReasonNotEnrolled = sdk.ReasonNotEnrolled

// maxCASAttempts bounds how often a verify re-reads state that changed
// under it. Each retry re-verifies against the newer state, so a code that
// won a race elsewhere is then seen as replayed.
const maxCASAttempts = 8

// Verify checks a user's answer. An allow is returned only after the
// provider's new state (recording the used code) was stored with
// compare-and-swap, so one code can never let two logins in, on one host
// or across replicas sharing a store. A Pending outcome (a push sent)
// carries a TxID to poll with PollVerification; while it is pending,
// asking for another push answers the same TxID.
func (f *Framework) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	if err := CheckClientIP(in.ClientIP); err != nil {
		return VerifyResult{}, err
	}
	if in.TxID != "" && in.Code == "" && f.capabilities(in.Provider).Push {
		return f.finishPush(ctx, in)
	}
	ctx = startVerify(ctx, false)
	if err := ValidateUserID(in.UserID); err != nil {
		return VerifyResult{}, err
	}
	if err := checkRemember(in); err != nil {
		return VerifyResult{}, err
	}
	if err := checkSession(in.Session); err != nil {
		return VerifyResult{}, err
	}
	if in.Provider == RecoveryProvider {
		return f.verifyRecovery(ctx, in)
	}
	m, err := f.provider(in.Provider, in.Audience)
	if err != nil {
		return VerifyResult{}, err
	}
	if err := f.checkFactor(m, in.Provider, in.Factor); err != nil {
		return VerifyResult{}, err
	}
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	// A push request checks no secret of the requester's: it is held back
	// by a lockout, and gated by the push limit (startPush), but reserves
	// no attempt, so a double click on "send push" answers the pending push
	// (of the same login: joinPush) instead of spending the budget. Its
	// answer, when it comes, is counted like any other.
	push := f.isPush(in)
	var t *ticket
	if push {
		err = f.checkLocked(ctx, in.UserID)
	} else {
		t, err = f.gateFor(ctx, in.UserID, BudgetFactor, in.Provider)
	}
	if err != nil {
		return f.record(ctx, in, nil, VerifyResult{}, nil, err)
	}
	if t != nil {
		in.failures = max(t.r.Failures-1, 0) // the reservation counts this one
	}
	if in.trustToken, err = f.trustTokenFor(ctx, in); err != nil {
		return f.record(ctx, in, t, VerifyResult{}, nil, err)
	}
	var res VerifyResult
	for range maxCASAttempts {
		started := time.Now()
		var upd *Enrollment
		if push {
			res, err = f.startPush(ctx, m, in)
		} else {
			var ptx string
			var decided *VerifyResult
			if ptx, decided, err = f.answeredTx(ctx, in); decided != nil {
				res = *decided
			} else if err == nil {
				pre := t.pre
				t.pre = nil // a decision made again reads the newer state
				res, upd, err = f.decide(ctx, m, in, ptx, pre)
			}
			if err == nil && res.Outcome == sdk.Pending {
				// Only a request for a push may leave something pending: a
				// code is decided now, and anything sent must pass the push
				// limit.
				res, upd, err = VerifyResult{}, nil, errorf(CodeInternal, nil, "provider %q answered pending to a code", in.Provider)
			}
		}
		switch {
		case err == nil && res.Reason == ReasonNotEnrolled:
			f.padNotEnrolled(ctx, m, started)
		case err == nil:
			m.latency.observe(time.Since(started))
		}
		res, err = f.record(ctx, in, t, res, upd, err)
		if !errors.Is(err, errStale) {
			if err == nil {
				f.endAnswered(ctx, in, res)
			}
			break
		}
		// Another request changed the state first: decide again on theirs
		// (a code it used is then a replay).
	}
	if errors.Is(err, errStale) {
		return f.record(ctx, in, t, VerifyResult{}, nil, errorf(CodeConflict, nil, "too many concurrent changes to this enrollment; try again"))
	}
	if err == nil && res.Outcome == sdk.Allow {
		return f.rememberDevice(ctx, in, res)
	}
	return res, err
}

// decisionTimeout bounds a decision once its attempt is reserved: the
// provider's call (which has a deadline of its own), the state write and
// the record. It does not end when the caller goes away. A variable only
// so that a test can shorten it (export_test.go).
var decisionTimeout = 30 * time.Second

// decisionContext detaches a decision from its caller's cancellation: once
// an attempt is reserved, the decision is made, stored, settled and audited
// whether or not the client still waits for it.
func decisionContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), decisionTimeout)
}

// pastDeadline is err as the caller is to see it: a store call that
// failed because ctx's deadline (decisionContext's) passed is a store
// that did not answer in time, an outage (503 store_unavailable with
// Retry-After, as the store's own timeouts are), not an internal error.
func pastDeadline(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return StoreUnavailable(err)
	}
	return err
}

// errNoPending is the answer for a txid that names no pending
// verification of the user: unknown, another user's, or already decided.
func errNoPending() error {
	return errorf(CodeNotFound, nil, "no pending verification with that id for this user")
}

// maxTxIDLen bounds a txid that can name a transaction: newTxID's are 24
// bytes.
const maxTxIDLen = 64

// issuedTxID says whether txid could be one this host issued: text of at
// most maxTxIDLen bytes without a NUL. Any other names no transaction and
// is answered like an unknown one (errNoPending) without reaching the
// store, where PostgreSQL refuses such text (SQLSTATE 22021) and the
// answer was an internal error. It is the only txid rule: the HTTP API
// has none of its own, so a txid has one answer (404) wherever it comes
// from, a body or a poll's path.
func issuedTxID(txid string) bool {
	return len(txid) <= maxTxIDLen && utf8.ValidString(txid) && !strings.ContainsRune(txid, 0)
}

// takeTx takes the transaction for the one request that gives its
// outcome (a decision, an expiry): errNoPending when another request took
// it first, as for a request after it.
func (f *Framework) takeTx(ctx context.Context, id string) error {
	switch err := f.store.TakeTransaction(ctx, id); {
	case errors.Is(err, ErrNotFound):
		return errNoPending()
	case err != nil:
		return errorf(CodeInternal, pastDeadline(ctx, err), "delete transaction")
	}
	return nil
}

// isPush says whether a verify asks for an out-of-band request (a push)
// rather than checks a code: no code, to a provider that can push.
func (f *Framework) isPush(in VerifyInput) bool {
	return in.Code == "" && f.capabilities(in.Provider).Push
}

// startPush sends a push, within the push limit: the transaction is
// reserved first (or the pending one answered, or the limit reported), then
// the provider asked, then its transaction id recorded.
func (f *Framework) startPush(ctx context.Context, m *managed, in VerifyInput) (VerifyResult, error) {
	login := SessionKey(in.Session)
	tx, pr, refused, err := f.reserveFreeing(ctx, in.UserID, in.Provider, in.Audience, login, login)
	if refused != nil {
		return VerifyResult{}, refused
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return VerifyResult{Outcome: sdk.Deny, Reason: ReasonNotEnrolled}, nil
	case err != nil:
		return VerifyResult{}, errorf(CodeInternal, err, "reserve push")
	case pr.Existing != nil:
		if err := joinPush(*pr.Existing, tx); err != nil {
			return VerifyResult{}, err
		}
		return VerifyResult{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: pr.Existing.ID,
			Details: map[string]string{"push": "already_pending"}}, nil
	case !pr.RetryAt.IsZero():
		return VerifyResult{}, &Error{Code: CodeLockedOut, Err: errPushLimit, RetryAfter: retryWithin(pr.RetryAt, tx.CreatedAt, f.sendLimit(in.Provider)),
			Message: "too many push requests for this user; try again later, or use a code"}
	}
	res, _, err := f.decide(ctx, m, in, "", nil)
	if err == nil && res.Outcome == sdk.Pending && res.TxID == "" {
		res, err = VerifyResult{}, errorf(CodeInternal, nil, "provider %q answered pending without a transaction id", in.Provider)
	}
	switch {
	case err != nil:
		// Nothing is pending, but the push may have been sent (a timeout):
		// free the user's one pending push; the push still counts.
		if derr := f.store.DeleteTransaction(ctx, tx.ID); derr != nil {
			f.log.Error("cannot delete a failed push's transaction", "provider", in.Provider, "user", in.UserID, "error", derr)
		}
		return res, err
	case res.Outcome != sdk.Pending:
		// Decided at once (a bypass, a refusal): no push reached the user,
		// so none is counted.
		if cerr := f.store.CancelPush(ctx, tx); cerr != nil {
			f.log.Error("cannot cancel an unsent push", "provider", in.Provider, "user", in.UserID, "error", cerr)
		}
		return res, nil
	}
	err = f.store.SendTransaction(ctx, tx.ID, res.TxID, f.now().Add(transactionTTL), time.Time{})
	if errors.Is(err, ErrNotFound) { // the enrollment was reset meanwhile
		return VerifyResult{Outcome: sdk.Deny, Reason: ReasonNotEnrolled}, nil
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "store transaction")
	}
	res.TxID = tx.ID
	return res, nil
}

// errPushLimit marks the CodeLockedOut of a reached push limit.
var errPushLimit = errors.New("push limit reached")

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
// another user's id gets CodeNotFound. A poll is not a guess and passes no
// gate, but its outcome is recorded like any verification's: a push the
// user denied, let time out or reported as fraud counts as a failure.
func (f *Framework) PollVerification(ctx context.Context, userID, txID string) (VerifyResult, error) {
	return f.pollVerification(ctx, userID, txID, "")
}

// pollVerification is PollVerification for a request from clientIP
// (checked by the caller), which the poll's decision is audited with: the
// address of whoever collects the user's answer.
func (f *Framework) pollVerification(ctx context.Context, userID, txID, clientIP string) (VerifyResult, error) {
	ctx = startVerify(ctx, true)
	if err := ValidateUserID(userID); err != nil {
		return VerifyResult{}, err
	}
	// From the first read on: a hung store fails the poll at the
	// decision's deadline (503), whatever the caller's context.
	if !issuedTxID(txID) {
		return VerifyResult{}, errNoPending()
	}
	ctx, cancel := decisionContext(ctx)
	defer cancel()
	tx, err := f.store.GetTransaction(ctx, userID, txID)
	if errors.Is(err, ErrNotFound) {
		return VerifyResult{}, errNoPending()
	}
	if err != nil {
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(ctx, err), "read transaction")
	}
	in := VerifyInput{UserID: userID, Provider: tx.Provider, Audience: tx.Audience, ClientIP: clientIP}
	if f.now().After(tx.ExpiresAt) {
		// Expired once, for one poll, like a decided push; a push whose
		// answer the provider cannot give stays, for the next poll or
		// start to settle.
		return f.settleExpiredPush(ctx, tx, in, true)
	}
	if tx.ProviderTxID == "" { // still being sent by the request that reserved it
		return VerifyResult{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: tx.ID}, nil
	}
	m, err := f.provider(tx.Provider, tx.Audience)
	if err != nil {
		return VerifyResult{}, err
	}
	taken := false
	for range maxCASAttempts {
		res, upd, err := f.decide(ctx, m, in, tx.ProviderTxID, nil)
		if err == nil && res.Outcome == sdk.Pending {
			res.TxID = tx.ID
			return f.record(ctx, in, nil, res, upd, nil)
		}
		if err == nil && res.Outcome == sdk.Deny && unanswered(res) {
			// The provider could not say what the user answered (its
			// backend unreachable, failmode secure; a garbled answer):
			// the poll is refused, but the push is not ended, as an
			// expired one is kept (expiredAnswer). It may hold the
			// user's fraud report, for the next poll or start to settle.
			res.TxID = ""
			res, err = f.record(ctx, in, nil, res, upd, nil)
			if !errors.Is(err, errStale) {
				return res, err
			}
			continue
		}
		if err == nil && res.Outcome == sdk.Deny {
			// A denial ends the push in the write that records it, and
			// the lockout a fraud report brings (recordSettle), as a
			// settle of an expired one does: taken first, the push left
			// a moment in which a start found the slot free and sent a
			// new push to the user who had just reported one. Of two
			// polls at once, one writes; the other finds it gone.
			if testHookSettle != nil {
				testHookSettle()
			}
			res, err = f.recordSettle(ctx, in, tx.ID, res, upd)
			if !errors.Is(err, errStale) {
				return res, err
			}
			continue
		}
		// A decided push is given once: two polls at once (a page's timer
		// and its retry, or a replayed request) both hear the provider's
		// answer, and only the one that takes the transaction gives it,
		// as a poll after it would find the verification gone.
		if err == nil && !taken {
			terr := f.takeTx(ctx, tx.ID)
			if CodeOf(terr) == CodeNotFound {
				return VerifyResult{}, terr
			}
			err, taken = terr, terr == nil // a failed take is recorded as the poll's error
			res.TxID = ""
		}
		res, err = f.record(ctx, in, nil, res, upd, err)
		if !errors.Is(err, errStale) {
			return res, err
		}
	}
	return f.record(ctx, in, nil, VerifyResult{}, nil, errorf(CodeConflict, nil, "too many concurrent changes to this enrollment; try again"))
}

// decide runs one provider Verify against the stored state. When the
// provider returns a new state, decide seals it into the enrollment it
// read and returns that for record to write with compare-and-swap (nil
// when the state did not change). providerTxID polls the provider's
// pending transaction when set. pre, when not nil, is the enrollment as
// the gate read it (gateFor), used instead of reading it again.
func (f *Framework) decide(ctx context.Context, m *managed, in VerifyInput, providerTxID string, pre *prefetched) (VerifyResult, *Enrollment, error) {
	var e Enrollment
	var err error
	switch {
	case pre == nil:
		e, err = f.store.Get(ctx, in.UserID, in.Provider)
	case pre.e == nil:
		err = ErrNotFound
	default:
		e = *pre.e
	}
	if errors.Is(err, ErrNotFound) || (err == nil && e.Status != StatusActive) {
		return VerifyResult{Outcome: sdk.Deny, Reason: ReasonNotEnrolled}, nil, nil
	}
	if err != nil {
		return VerifyResult{}, nil, errorf(CodeInternal, err, "read enrollment")
	}
	state, err := f.seal.open(in.UserID, in.Provider, e.State)
	if err != nil {
		f.log.Error("cannot open stored state", "provider", in.Provider, "user", in.UserID, "error", err)
		return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidState}, nil, nil
	}
	now := f.now()
	var resp sdk.VerifyResponse
	err = f.call(ctx, m, func(p sdk.Provider) error {
		var err error
		resp, err = p.Verify(ctx, sdk.VerifyRequest{
			User: sdk.User{ID: in.UserID}, State: state, Code: in.Code, Factor: sdk.Factor(in.Factor),
			TxID: providerTxID, ClientIP: in.ClientIP, Now: now, TrustToken: in.trustToken, Failures: in.failures,
		})
		return err
	})
	if sdk.KindOf(err) == sdk.KindInvalidState {
		f.log.Error("provider refused stored state", "provider", in.Provider, "user", in.UserID, "error", err)
		return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidState}, nil, nil
	}
	if err != nil {
		return VerifyResult{}, nil, providerErr(in.Provider, err)
	}
	res := VerifyResult{Outcome: resp.Outcome, Reason: resp.Reason, Message: resp.Message, TxID: resp.TxID, Details: resp.Details}
	res = f.conformReason(in.Provider, in.UserID, res)
	switch res.Outcome {
	case sdk.Allow:
		res.Unprompted, res.trustToken = resp.Unprompted, resp.TrustToken
	case sdk.Deny, sdk.Pending:
	default:
		return VerifyResult{}, nil, errorf(CodeInternal, nil, "provider %q returned unknown outcome %q", in.Provider, res.Outcome)
	}
	if resp.State == nil {
		return res, nil, nil
	}
	if len(resp.State) == 0 {
		return VerifyResult{}, nil, errorf(CodeInternal, nil, "provider %q returned an empty state", in.Provider)
	}
	sealed, err := f.seal.seal(in.UserID, in.Provider, resp.State)
	if err != nil {
		return VerifyResult{}, nil, errorf(CodeInternal, err, "seal state")
	}
	e.State, e.UpdatedAt = sealed, now
	return res, &e, nil
}
