package framework

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/twofactor/twofactor/sdk"
)

// A push is answered by the user's approval on their phone, not by
// anything its poller knows but the transaction id: whoever holds the id
// when the user approves gets the allow. So a pending push's id is handed
// only to the login that started it. Before, a second start for the same
// user, provider and audience was answered with the pending push ("one
// pending push per user"): an attacker with the password pressed "Send
// push" on a login of their own while the user's own push waited, the
// user approved their own request, and the attacker's page, polling
// faster, took the allow, and a remembered device with it. Now each start
// says which login it is for (StartInput.Session, VerifyInput.Session);
// the transaction keeps a hash of it; a start of the same login is
// answered with its pending push, as before, and any other is refused,
// sending nothing, until that push is answered or expires. A start that
// names no login never joins one, and a challenge start of another login
// is refused the same way (the one pending slot is shared). Codes sent by
// a challenge are not bound: answering one needs the code the user
// received. A pending push ends when its own login polls it, when it
// expires, or when the user denies it: a start of another login that
// finds it asks the provider, and a push the user denied (or reported) is
// taken and its denial recorded, as its own login's poll would have, and
// the start goes on (freeDenied). So an attacker with the password whose
// push the user denies no longer keeps the user's own login's push
// refused for the transaction's lifetime. A push still waiting, or one
// the user approved (its allow is its own login's to collect), keeps the
// slot; codes keep working meanwhile.

// MaxSession bounds StartInput.Session and VerifyInput.Session.
const MaxSession = 256

// errPushPending marks the CodeLockedOut of a push refused because
// another login's push is pending.
var errPushPending = errors.New("another login's push is pending")

// pushPrefix starts the Session of every push transaction; a code
// challenge's is "". A push transaction written before sessions were kept
// has "" too, and is then joined as before, for the few minutes it lives
// after the upgrade.
const pushPrefix = "push:"

// SessionKey is what a push transaction keeps of its login's Session:
// pushPrefix and a SHA-256 of it, so that a caller's session id is never
// stored; pushPrefix alone for a push started without one, which no
// start joins.
func SessionKey(session string) string {
	if session == "" {
		return pushPrefix
	}
	sum := sha256.Sum256([]byte("twofactor push session\x00" + session))
	return pushPrefix + hex.EncodeToString(sum[:])
}

// checkSession refuses a Session that is too long or not text.
func checkSession(s string) error {
	if len(s) > MaxSession || !utf8.ValidString(s) {
		return errorf(CodeInvalidRequest, nil, "session must be at most %d bytes of UTF-8", MaxSession)
	}
	return nil
}

// joinPush says whether tx, a new start (its Session SessionKey of its
// login), may be answered with pending, the transaction already holding
// the user's one slot: always when pending is a code challenge (answering
// it needs the code), and when it is a push only if both name the same
// login.
func joinPush(pending, tx Transaction) error {
	if !strings.HasPrefix(pending.Session, pushPrefix) {
		return nil
	}
	if tx.Session != pushPrefix && subtle.ConstantTimeCompare([]byte(pending.Session), []byte(tx.Session)) == 1 {
		return nil
	}
	return &Error{Code: CodeLockedOut, Err: errPushPending, RetryAfter: pending.ExpiresAt.Sub(tx.CreatedAt),
		Message: "another login's request is waiting for this user's answer; a push is sent again once the user denies it, its login collects the answer, or it expires (a code still works meanwhile)"}
}

// freeDenied is for a start of login (a SessionKey) that found pending
// holding the user's one slot. When pending is another login's push that
// the user has denied at the provider, it takes the transaction, records
// the denial once (of simultaneous starts, one records it: TakeTransaction),
// and reports true: the caller reserves again. The denial counts against
// the user's budget like any other, so a fraud report that locks the user
// is answered with the lockout, and nothing is sent. Anything else (a push
// still waiting or approved, a provider that cannot say) leaves the slot
// as it is: the start is refused as before.
//
// The provider is asked about one pending push at most once per askEvery
// on this host, and starts that come meanwhile share that answer: each
// refused start would otherwise be a call to Duo's API, and someone with
// the password pressing "Send push" in a loop would spend the
// integration's rate limit for every user.
func (f *Framework) freeDenied(ctx context.Context, pending Transaction, login string) (bool, error) {
	if pending.ProviderTxID == "" || !IsPushPending(joinPush(pending, Transaction{Session: login})) {
		return false, nil
	}
	freed, _, _ := f.asked.group.Do(pending.ID, func() (any, error) {
		if freed, ok := f.asked.recent(pending.ID, f.now()); ok {
			return freed, nil
		}
		freed := f.settleDenied(ctx, pending)
		f.asked.remember(pending.ID, f.now(), freed)
		return freed, nil
	})
	if freed != true {
		return false, nil
	}
	return true, f.checkLocked(ctx, pending.UserID)
}

// settleDenied asks the provider about pending and, if the user denied
// it, records the denial with the push's deletion; it reports whether the
// slot is free (settled here or by another request). A provider that
// cannot say (its backend unreachable) has not answered for the user.
func (f *Framework) settleDenied(ctx context.Context, pending Transaction) bool {
	m, err := f.provider(pending.Provider, pending.Audience)
	if err != nil {
		return false
	}
	in := VerifyInput{UserID: pending.UserID, Provider: pending.Provider, Audience: pending.Audience}
	for range maxCASAttempts {
		res, upd, err := f.decide(ctx, m, in, pending.ProviderTxID, nil)
		if err != nil || res.Outcome != sdk.Deny || unanswered(res) {
			return false
		}
		// The push ends in the write of the denial and its lockout
		// (recordSettle): a start that finds the slot free finds the
		// lockout too.
		_, err = f.recordSettle(ctx, in, pending.ID, res, upd)
		switch {
		case err == nil, errors.Is(err, ErrNotFound): // recorded here, or by its poll or another start
			return true
		case !errors.Is(err, errStale):
			return false // still pending, and the start refused as before
		}
	}
	return false
}

// askEvery is how often freeDenied may ask the provider about one pending
// push: as often as a login page polls its own.
const askEvery = 2 * time.Second

// askThrottle shares freeDenied's answers: one question at a time per
// pending push (group), and its answer for askEvery (last).
type askThrottle struct {
	group singleflight.Group
	mu    sync.Mutex
	last  map[string]asked
}

type asked struct {
	at    time.Time
	freed bool
}

// recent is the answer about id given less than askEvery before now.
func (a *askThrottle) recent(id string, now time.Time) (freed, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.last[id]
	if !ok || now.Sub(r.at) >= askEvery || now.Before(r.at) {
		return false, false
	}
	return r.freed, true
}

// remember keeps the answer about id; answers older than askEvery are
// dropped as the map grows, so it holds about the pushes asked about in
// the last askEvery.
func (a *askThrottle) remember(id string, now time.Time, freed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = map[string]asked{}
	}
	if len(a.last) >= 1024 {
		for k, r := range a.last {
			if now.Sub(r.at) >= askEvery {
				delete(a.last, k)
			}
		}
	}
	a.last[id] = asked{at: now, freed: freed}
}

// IsPushPending says whether err refused a push because another login's
// push is still waiting for the user's answer.
func IsPushPending(err error) bool { return errors.Is(err, errPushPending) }
