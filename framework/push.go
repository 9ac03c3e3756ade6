package framework

import (
	"cmp"
	"context"
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
// already pending: answer with it), RetryAt (the limit is reached until
// then) or neither (the transaction was inserted: send the push).
type PushReservation struct {
	Existing *Transaction
	RetryAt  time.Time
}

// PushStore keeps the push limit and the transactions of pushes in flight.
type PushStore interface {
	// ReservePush atomically: returns the user's live transaction for
	// tx.Provider and tx.Audience (ExpiresAt after now) if there is one,
	// changing nothing (a push started for one audience's login never
	// answers another's), unless that transaction is a challenge whose
	// ResendAfter has passed: then it is deleted and the reservation goes
	// on as if there had been none;
	// else, if limit.Max pushes were counted in the window still running,
	// returns RetryAt (the window's end), changing nothing; else counts one
	// push (a window that has passed starts again at now) and inserts tx.
	// ErrNotFound, changing nothing, if the user has no enrollment in
	// tx.Provider.
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
// is the lockout the denial's record brought, to be answered as it is;
// err is the store's.
func (f *Framework) reserveFreeing(ctx context.Context, userID, provider string, aud Audience, session, login string) (tx Transaction, pr PushReservation, refused, err error) {
	if refused, err = f.settleExpired(ctx, userID, provider, aud); refused != nil || err != nil {
		return tx, pr, refused, err
	}
	tx, pr, err = f.reserveSend(ctx, userID, provider, aud, session)
	if err != nil || pr.Existing == nil {
		return tx, pr, nil, err
	}
	freed, refused := f.freeDenied(ctx, *pr.Existing, login)
	if refused != nil || !freed {
		return tx, pr, refused, nil
	}
	tx, pr, err = f.reserveSend(ctx, userID, provider, aud, session)
	return tx, pr, nil, err
}

// settleExpired records what the user answered to their pushes that
// expired unpolled, before a new start reserves: the user's denial or
// fraud report is theirs whether or not the push's login came back for
// it. Someone with the password who never polls, waits out each push and
// pushes again would otherwise never have the user's denials counted nor
// their fraud report lock the account. Each such push is taken (one
// start of simultaneous ones, on any replica, gets it), the provider is
// asked (expiredAnswer), and a denial is recorded and counted as a
// poll's would be (a timeout Duo reports counts, as a poll's does); a
// push the provider calls merely expired is dropped as before. refused is
// the lockout a recorded denial brought: the start is refused with it,
// nothing sent. A record that fails does not stop the others: the pushes
// were taken, and each one not recorded is a denial lost; the start then
// fails with the first error.
func (f *Framework) settleExpired(ctx context.Context, userID, provider string, aud Audience) (refused, err error) {
	expired, err := f.store.TakeExpiredPushes(ctx, userID, provider, aud, f.now())
	if err != nil {
		return nil, errorf(CodeInternal, pastDeadline(ctx, err), "take expired pushes")
	}
	recorded := false
	var first error
	for _, tx := range expired {
		in := VerifyInput{UserID: userID, Provider: tx.Provider, Audience: tx.Audience}
		res := f.expiredAnswer(ctx, tx, in)
		if res.Reason == sdk.ReasonExpired {
			continue
		}
		if _, err := f.record(ctx, in, nil, res, nil, nil); err != nil {
			first = cmp.Or(first, err)
			continue
		}
		recorded = true
	}
	if first != nil {
		return nil, first
	}
	if !recorded {
		return nil, nil
	}
	return f.checkLocked(ctx, userID), nil
}

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
