package framework

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// PushLimit bounds the out-of-band requests (pushes) sent to one user by
// one provider: the defence against push fatigue ("MFA bombing"), where an
// attacker who has the password sends push after push until a tired user
// approves one. Besides it, a user never has more than one push pending
// per provider: asking again while one is pending answers that one.
type PushLimit struct {
	Max    int           // pushes per Window; 3
	Window time.Duration // 10 minutes
}

// DefaultPushLimit is used for zero fields of Options.PushLimit.
var DefaultPushLimit = PushLimit{Max: 3, Window: 10 * time.Minute}

func (l PushLimit) withDefaults() PushLimit {
	if l.Max <= 0 {
		l.Max = DefaultPushLimit.Max
	}
	if l.Window <= 0 {
		l.Window = DefaultPushLimit.Window
	}
	return l
}

// PushReservation is ReservePush's answer: one of Existing (a push is
// already pending: answer with it), Unsettled (a push expired unpolled
// and its answer is not yet recorded: nothing may be sent until it is),
// RetryAt (the limit is reached until then) or none (the transaction was
// inserted: send the push).
type PushReservation struct {
	Existing  *Transaction
	Unsettled *Transaction
	RetryAt   time.Time
}

// PruneAfter is how long an expired transaction that holds nothing to
// settle is kept (ReservePush deletes it after): for that long a code
// typed late, or a poll, is answered "expired" rather than "nothing sent".
const PruneAfter = time.Hour

// PushStore keeps the push limit and the transactions of pushes in flight.
type PushStore interface {
	// ReservePush atomically: returns the user's live transaction for
	// tx.Provider and tx.Audience (ExpiresAt after now) if there is one,
	// changing nothing (a push started for one audience's login never
	// answers another's), unless that transaction is a challenge whose
	// ResendAfter has passed: then it is deleted and the reservation goes
	// on as if there had been none;
	// else, if the user has a push for tx.Provider and tx.Audience that
	// was sent and expired unpolled (ExpiredPushes: stored until settled),
	// returns it as Unsettled, changing nothing;
	// else, if limit.Max pushes were counted in the window still running,
	// returns RetryAt (the window's end), changing nothing; else counts one
	// push (a window that has passed starts again at now) and inserts tx,
	// deleting the user's transactions for tx.Provider and tx.Audience
	// that expired before now-PruneAfter and hold nothing to settle (never
	// sent, or code challenges): without that, every expired challenge
	// stayed forever, a row per code sent. ErrNotFound, changing nothing,
	// if the user has no enrollment in tx.Provider.
	ReservePush(ctx context.Context, tx Transaction, now time.Time, limit PushLimit) (PushReservation, error)
	// SendTransaction records the provider's transaction id of a push or a
	// challenge once it was sent, the transaction's full lifetime and, for
	// a challenge, when it may be sent again (zero for a push);
	// ErrNotFound if the transaction is gone.
	SendTransaction(ctx context.Context, id, providerTxID string, expiresAt, resendAfter time.Time) error
	// CancelPush deletes a reserved transaction whose push was never sent
	// (the provider decided at once: a bypass, a refusal) and gives its
	// count in the window back; a transaction that is gone changes
	// nothing.
	CancelPush(ctx context.Context, tx Transaction) error
	// CountSends counts one send in the window of every key, atomically:
	// if the window of any key (a window that has passed starts again at
	// now) already holds limit.Max sends, it returns the latest end of
	// such a window and counts nothing; else it counts one in each and
	// returns the zero time. A key needs no enrollment. A key's window is
	// the one ReservePush counts in when the key is a user and provider.
	CountSends(ctx context.Context, keys []SendKey, now time.Time, limit PushLimit) (retryAt time.Time, err error)
	// SettlePush records the user's answer to a push in one transaction:
	// it deletes the transaction s.TxID, writes s.Update with
	// compare-and-swap as Update does (if not nil), counts s.Failure
	// as RecordFailure does (if not nil) and appends s.Audit. It returns
	// the budget after the failure (the zero value without one).
	// ErrNotFound when the transaction is gone (another request settled
	// it first), ErrConflict when s.Update's version is stale: either
	// way nothing is written. So the push is gone if and only if its
	// answer, and the lockout that answer brings, are stored: a start
	// that finds no push to settle finds its lockout, on any replica.
	SettlePush(ctx context.Context, s PushSettle) (Attempts, error)
}

// PushSettle is what SettlePush writes.
type PushSettle struct {
	TxID    string
	Update  *Enrollment
	Audit   []AuditEntry
	Failure *Failure
}

// Failure is one failed attempt no reservation counted: Budget of
// UserID, locked until the later of its LockedUntil and LockUntil(the
// new count).
type Failure struct {
	UserID    string
	Budget    Budget
	LockUntil func(failures int) time.Time
}

// SendKey names one send window: a user's for a provider, or a
// destination's (DestinationKey).
type SendKey struct {
	Subject  string // a user id, or a destination's hash
	Provider string // a provider name, or DestinationKey's form of it
}

// pushSendTTL is how long a reserved push may take to be sent. Until the
// provider answers, the transaction holds the user's one pending push; if
// this host dies before recording the provider's id, the reservation
// expires after this and does not block the user's next push for long.
const pushSendTTL = time.Minute

// Resendable says whether a live transaction may be replaced by a new
// send at now: a challenge whose ResendAfter has passed. A push (no
// ResendAfter) is answered, never replaced, while it is pending. Stores
// call it inside ReservePush, so that every store draws the line alike.
func Resendable(tx Transaction, now time.Time) bool {
	return !tx.ResendAfter.IsZero() && !tx.ResendAfter.After(now)
}

// reserveSend reserves one out-of-band send (a push, a challenge) for the
// user's provider and audience under the push limit, as a transaction that
// holds the user's one pending slot for pushSendTTL until it is sent.
// session is what the transaction keeps of its login: SessionKey(...)
// for a push, "" for a code challenge (see pushsession.go).
func (f *Framework) reserveSend(ctx context.Context, userID, provider string, aud Audience, session string) (Transaction, PushReservation, error) {
	now := f.now()
	tx := Transaction{
		ID: newTxID(), UserID: userID, Provider: provider, Audience: aud,
		CreatedAt: now, ExpiresAt: now.Add(pushSendTTL), Session: session,
	}
	pr, err := f.store.ReservePush(ctx, tx, now, f.sendLimit(provider))
	return tx, pr, err
}

// reserveFreeing is reserveSend for a start of login (its SessionKey):
// when the slot is held by another login's push that the user has denied,
// that push is settled (freeDenied) and the slot reserved again. refused
// is the answer to give as it is: the lockout the denial's record
// brought, or settleExpired's error (the provider could not say what the
// user answered to an expired push, or the store failed); err is the
// reservation's.
//
// A reservation, or the pending push it found, is checked against the
// lockout once made (a new one given back if the user is locked): it is
// the moment that counts. A settle
// deletes a push in the transaction that stores its answer and lockout
// (SettlePush), and ReservePush reserves nothing while an expired push is
// unsettled, so a reservation that found no push to settle comes after
// the lockout of every push settled before it, on any replica; a check
// made before it (the start's first one, or settleExpired's) could come
// before a settle that another start, or a push expiring meanwhile,
// finished in between.
func (f *Framework) reserveFreeing(ctx context.Context, userID, provider string, aud Audience, session, login string) (tx Transaction, pr PushReservation, refused, err error) {
	for range maxCASAttempts {
		if refused, err = f.settleExpired(ctx, userID, provider, aud); err != nil {
			return tx, pr, err, nil // already the answer (a provider that cannot say: 503), not a reservation's failure
		}
		if refused != nil {
			return tx, pr, refused, nil
		}
		tx, pr, err = f.reserveSend(ctx, userID, provider, aud, session)
		if err == nil && pr.Existing != nil {
			switch freed, refused := f.freeDenied(ctx, *pr.Existing, login); {
			case refused != nil:
				return tx, pr, refused, nil
			case freed:
				tx, pr, err = f.reserveSend(ctx, userID, provider, aud, session)
			}
		}
		if err != nil || pr.Unsettled == nil {
			break
		}
		// A push expired since settleExpired looked: settle it too.
	}
	switch {
	case err != nil || !pr.RetryAt.IsZero():
		return tx, pr, nil, err
	case pr.Unsettled != nil:
		return tx, pr, nil, errorf(CodeConflict, nil, "an earlier push's answer is still being recorded; try again")
	}
	if refused = f.checkLocked(ctx, userID); refused != nil {
		// A pending push found (Existing) may be one reserved by a start
		// that is about to find the same lockout and cancel it: it is not
		// answered either.
		if pr.Existing == nil {
			if cerr := f.store.CancelPush(ctx, tx); cerr != nil {
				f.log.Error("cannot cancel a push reserved for a locked user", "provider", provider, "user", userID, "error", cerr)
			}
		}
		return tx, pr, refused, nil
	}
	return tx, pr, nil, nil
}

// settleExpired records what the user answered to their pushes that
// expired unpolled, before a new start reserves: the user's denial or
// fraud report is theirs whether or not the push's login came back for
// it. Someone with the password who never polls, waits out each push and
// pushes again would otherwise never have the user's denials counted nor
// their fraud report lock the account. The provider is asked about each
// such push (expiredAnswer); a denial is recorded and counted as a
// poll's would be (a timeout Duo reports counts, as a poll's does), in
// the one store transaction that deletes the push (SettlePush: of
// simultaneous starts, on any replica, one records it); a push the
// provider calls merely expired is deleted as before. A push whose
// answer the provider cannot give (an outage, a hung or garbled answer)
// stays stored, and the start fails with the provider's error: it may
// hold a fraud report, so nothing is sent until it is settled. refused
// is the lockout a recorded denial brought: the start is refused with
// it, nothing sent. A push that fails to settle does not stop the
// others; the start then fails with the first error.
func (f *Framework) settleExpired(ctx context.Context, userID, provider string, aud Audience) (refused, err error) {
	expired, err := f.store.ExpiredPushes(ctx, userID, provider, aud, f.now())
	if err != nil {
		return nil, errorf(CodeInternal, pastDeadline(ctx, err), "read expired pushes")
	}
	recorded := false
	var first error
	for _, tx := range expired {
		in := VerifyInput{UserID: userID, Provider: tx.Provider, Audience: tx.Audience}
		res, err := f.settleExpiredPush(ctx, tx, in, false)
		switch {
		case errors.Is(err, ErrNotFound): // settled by another request: its answer is stored
			recorded = true
		case err != nil:
			first = cmp.Or(first, err)
		case res.Reason != sdk.ReasonExpired:
			recorded = true
		}
	}
	if first != nil {
		return nil, first
	}
	if !recorded {
		return nil, nil
	}
	return f.checkLocked(ctx, userID), nil
}

// settleExpiredPush asks the provider what the user answered to tx, a
// push that expired unpolled, and ends it: a denial is recorded in the
// write that deletes the push (recordSettle); a push the provider calls
// merely expired is deleted, and recorded as such when record says so
// (a poll's answer). A provider that cannot say leaves the push stored
// and returns its error. ErrNotFound (in the error) when another request
// ended the push first.
func (f *Framework) settleExpiredPush(ctx context.Context, tx Transaction, in VerifyInput, record bool) (VerifyResult, error) {
	res, err := f.expiredAnswer(ctx, tx, in)
	if err != nil {
		return VerifyResult{}, err
	}
	if testHookSettle != nil {
		testHookSettle()
	}
	if res.Reason != sdk.ReasonExpired {
		return f.recordSettle(ctx, in, tx.ID, res, nil)
	}
	switch err := f.store.TakeTransaction(ctx, tx.ID); {
	case errors.Is(err, ErrNotFound):
		return VerifyResult{}, errGone()
	case err != nil:
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(ctx, err), "delete expired push")
	}
	if !record {
		return res, nil
	}
	return f.record(ctx, in, nil, res, nil, nil)
}

// expiredAnswer is the decision of a push whose transaction expired
// before its poll: expired, unless the provider says the user denied it,
// let it time out or reported it while it was live. That answer is the
// user's, and counts as such: an attacker who waits out the transaction
// before polling must not make a fraud report vanish. An approval found
// late is not given (the push expired), nor is anything else the
// provider says. But a provider that cannot say what the user answered
// (it failed, timed out or answered garbage; its backend was unreachable,
// which its failmode answered for, or refused the question; or it still
// waits for an answer, as Duo reports an auth_status that hung) is an
// error: the push may hold a
// fraud report, so it is kept, and nothing is sent, until the provider
// can say (fail closed). A provider that says it does not know the
// transaction (expired) has answered.
func (f *Framework) expiredAnswer(ctx context.Context, tx Transaction, in VerifyInput) (VerifyResult, error) {
	expired := VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonExpired}
	if tx.ProviderTxID == "" || !tx.ResendAfter.IsZero() { // never sent, or a code challenge
		return expired, nil
	}
	m, err := f.provider(tx.Provider, tx.Audience)
	if err != nil {
		return VerifyResult{}, err
	}
	res, _, err := f.decide(ctx, m, in, tx.ProviderTxID, nil)
	switch {
	case err != nil:
		return VerifyResult{}, err
	case unanswered(res):
		return VerifyResult{}, errorf(CodeProviderUnavailable, nil, "provider %q cannot say now what the user answered to an earlier push; try again", in.Provider)
	case res.Outcome != sdk.Deny || !res.Reason.CountsAgainstBudget(false):
		return expired, nil
	}
	res.TxID = ""
	return res, nil
}

// unanswered says whether res, the provider's answer about a push, is
// not the user's: the push still waits (or the provider's backend hung),
// the backend could not be asked and the failmode answered, or it
// refused the question (Duo's provider says so of a malformed answer
// too).
func unanswered(res VerifyResult) bool {
	switch res.Reason {
	case sdk.ReasonUnavailable, sdk.ReasonFailmodeSafe, sdk.ReasonBackendRefused:
		return true
	}
	return res.Outcome == sdk.Pending
}

// testHookSettle, set by tests, runs in a settle of an expired push, and
// in a poll of a decided one, once the provider answered and before the
// answer is recorded.
var testHookSettle func()

// sendLimit is the push limit, or SilentChallengeFactor times it for a
// provider whose challenges send the user nothing (WebAuthn options): the
// limit guards users against floods of codes and pushes, and a security
// key's challenge that the user cancelled reached nobody. It still bounds
// them, since each one writes the user's state.
func (f *Framework) sendLimit(provider string) PushLimit {
	l := f.pushLimit
	if f.capabilities(provider).SilentChallenges {
		l.Max *= sdk.SilentChallengeFactor
	}
	return l
}
