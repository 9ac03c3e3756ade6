package sqlite

import (
	"sync"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// ledger holds the gate's reservations in this process until their
// decisions settle them, instead of writing each one to the file.
//
// What a reservation must hold against is a concurrent attempt: it is
// counted from the moment it is made until its decision is committed, so
// a burst gets no more evaluations than the budget leaves free. SQLite is
// one host's store, so "concurrent" means this process, and an in-memory
// count is as good as a row, without a write transaction (and its turn on
// the single writer connection, behind the commits) per attempt. Nothing
// is lost by a crash: a reservation a crash takes back belongs to an
// attempt whose decision was never committed, hence never answered. A
// failed guess is written to the stored budget by its decision's own
// commit (the one that is fsynced), so what was answered is counted on
// disk.
//
// Two hosts serving from one SQLite file would each count only their own
// reservations: the PostgreSQL store is the one for replicas.
//
// Each (user, budget) with reservations held has an entry. Its mu is held
// by ReserveAttempt while it reads the stored budget and adds its
// reservation, and by the decision writer from before it writes a
// settlement until the reservation is released after the commit: so a
// reservation never reads a budget that already counts a failure the
// ledger still holds (counted twice), nor one that misses it.
type ledger struct {
	mu      sync.Mutex // guards entries, next, and every entry's refs and held
	entries map[ledgerKey]*ledgerEntry
	next    uint64
}

type ledgerKey struct {
	user   string
	budget framework.Budget
}

type ledgerEntry struct {
	mu   sync.Mutex           // see ledger
	refs int                  // goroutines between pin and unpin
	held map[uint64]time.Time // reservation ID → the LockedUntil it set (zero for none)
}

func newLedger() *ledger { return &ledger{entries: map[ledgerKey]*ledgerEntry{}} }

// pin returns k's entry, kept in the map until unpin.
func (l *ledger) pin(k ledgerKey) *ledgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil {
		e = &ledgerEntry{held: map[uint64]time.Time{}}
		l.entries[k] = e
	}
	e.refs++
	return e
}

func (l *ledger) unpin(k ledgerKey, e *ledgerEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	l.dropIfIdle(k, e)
}

func (l *ledger) dropIfIdle(k ledgerKey, e *ledgerEntry) {
	if e.refs == 0 && len(e.held) == 0 && l.entries[k] == e {
		delete(l.entries, k)
	}
}

// withHeld is stored plus what the ledger holds for k: one failure per
// reservation, and the latest lock any of them set.
func (l *ledger) withHeld(k ledgerKey, stored framework.Attempts) framework.Attempts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.withHeldLocked(k, stored)
}

func (l *ledger) withHeldLocked(k ledgerKey, a framework.Attempts) framework.Attempts {
	e := l.entries[k]
	if e == nil {
		return a
	}
	a.Failures += len(e.held)
	for _, until := range e.held {
		if until.After(a.LockedUntil) {
			a.LockedUntil = until
		}
	}
	return a
}

// reserve is ReserveAttempt's decision on the stored budget, with e.mu
// held: refused while locked, else one more reservation held.
func (l *ledger) reserve(k ledgerKey, e *ledgerEntry, stored framework.Attempts, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.withHeldLocked(k, stored)
	if cur.LockedUntil.After(now) {
		return framework.Reservation{Attempts: cur}, false, nil
	}
	n := cur.Failures + 1
	// As the stored budget would hold it: UTC, in nanoseconds.
	ns, err := unixOrZero("LockedUntil", lockUntil(n))
	if err != nil {
		return framework.Reservation{}, false, err
	}
	until := attempts(n, ns).LockedUntil
	l.next++
	e.held[l.next] = until
	return framework.Reservation{Attempts: framework.Attempts{Failures: n, LockedUntil: until}, PrevLockedUntil: cur.LockedUntil, ID: l.next}, true, nil
}

// holds says whether reservation id of k is still held (not settled, not
// ended by a reset).
func (l *ledger) holds(k ledgerKey, id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil {
		return false
	}
	_, ok := e.held[id]
	return ok
}

// release lets reservations go; an ID already gone is skipped.
func (l *ledger) release(tickets ...heldID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range tickets {
		if e := l.entries[t.key]; e != nil {
			delete(e.held, t.id)
			l.dropIfIdle(t.key, e)
		}
	}
}

// heldID names one held reservation.
type heldID struct {
	key ledgerKey
	id  uint64
}

// heldBy lists the reservations held now for user, in every budget: the
// ones a reset of the user's runs ends (a reservation made after the
// reset's snapshot read a budget that was not reset yet, and stays).
func (l *ledger) heldBy(user string) []heldID {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []heldID
	for k, e := range l.entries {
		if k.user != user {
			continue
		}
		for id := range e.held {
			out = append(out, heldID{k, id})
		}
	}
	return out
}
