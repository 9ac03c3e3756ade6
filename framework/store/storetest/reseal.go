package storetest

// ResealEnrollments, rekey's write: a page of compare-and-swaps in one
// transaction, where a row a login wrote since the page was read keeps
// the login's write.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// scanAll is every enrollment of the store, as rekey reads a page.
func scanAll(t *testing.T, sc framework.EnrollmentScanner) []framework.Enrollment {
	t.Helper()
	page, err := sc.ScanEnrollments(t.Context(), "", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// resealed is e as ResealEnrollments may be handed it: a new state, and
// a later UpdatedAt that the store must not write (a re-seal changes no
// time: a pending setup's lifetime is counted from UpdatedAt).
func resealed(e framework.Enrollment) framework.Enrollment {
	e.State = append([]byte("resealed "), e.State...)
	e.UpdatedAt = at(2 * time.Hour)
	return e
}

// afterReseal is e as the store holds it after ResealEnrollments wrote b
// (resealed(e)) over it: b's state at e's version plus one, every other
// field e's.
func afterReseal(e, b framework.Enrollment) framework.Enrollment {
	e.State = b.State
	e.Version++
	return e
}

// testResealBatch: of a page read at once, one row written by a login
// since (stale) and one reset since (gone), the batch writes the others,
// each at its version plus one with only State changed (UpdatedAt kept), and
// leaves those two as they are. A batch naming a row twice writes nothing.
func testResealBatch(t *testing.T, s framework.Store) {
	sc := capability[framework.EnrollmentScanner](t, s)
	active(t, s, "alice", "totp")
	mustPut(t, s, newPending("bob", "duo", []byte("bob")))
	active(t, s, "carol", "totp")
	active(t, s, "dave", "totp")
	page := scanAll(t, sc)
	if len(page) != 4 {
		t.Fatalf("scan: %d rows, want 4", len(page))
	}
	login := page[2] // carol's
	login.State, login.UpdatedAt = []byte("the login's write"), at(time.Hour)
	login = mustUpdate(t, s, login)
	if err := s.Delete(t.Context(), "dave", "totp"); err != nil {
		t.Fatal(err)
	}

	batch := make([]framework.Enrollment, len(page))
	for i, e := range page {
		batch[i] = resealed(e)
	}
	dup := append(batch[:2:2], batch[0])
	if _, err := sc.ResealEnrollments(t.Context(), dup); err == nil {
		t.Error("a batch naming alice twice was accepted")
	}
	check(t, "alice after a refused batch", mustGet(t, s, "alice", "totp"), page[0])

	written, err := sc.ResealEnrollments(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, false}; fmt.Sprint(written) != fmt.Sprint(want) {
		t.Errorf("written = %v, want %v (alice, bob; not carol, stale; not dave, gone)", written, want)
	}
	for i, user := range []string{"alice", "bob"} {
		check(t, user+" re-sealed", mustGet(t, s, user, page[i].Provider), afterReseal(page[i], batch[i]))
	}
	check(t, "carol, written by a login since the page was read", mustGet(t, s, "carol", "totp"), login)
	if _, err := s.Get(t.Context(), "dave", "totp"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("dave, reset since the page was read: %v, want not found (a reseal created it again)", err)
	}
	if written, err := sc.ResealEnrollments(t.Context(), nil); err != nil || len(written) != 0 {
		t.Errorf("an empty batch: %v, %v", written, err)
	}
}

func testResealRacesLogins(t *testing.T, s framework.Store) { ResealRacesLogins(t, s) }

// ResealRacesLogins: a batch and a login on each of its rows, all at
// once, every one a compare-and-swap from the version the page read: per
// row exactly one wins, and the row holds the winner's write, whichever
// it is. A login's write is never overwritten by the batch. The logins
// are spread over stores (several stores on one database stand for
// replicas), half of them as Update and half as the decision a verify
// commits (group-committed with each other, in their lock order); the
// batch runs on the last store. The rows are deleted at the end, so it
// can run again on the same stores.
func ResealRacesLogins(t *testing.T, stores ...framework.Store) {
	sc := capability[framework.EnrollmentScanner](t, stores[len(stores)-1])
	for i := range concurrency {
		active(t, stores[0], fmt.Sprintf("user%02d", i), "totp")
	}
	page := scanAll(t, sc)
	batch := make([]framework.Enrollment, len(page))
	for i, e := range page {
		batch[i] = resealed(e)
	}
	var written []bool
	logins := make([]framework.Enrollment, len(page))
	_, errs := burst.Run2(len(page)+1, func(i int) (struct{}, error) {
		if i == len(page) {
			var err error
			written, err = sc.ResealEnrollments(t.Context(), batch)
			return struct{}{}, err
		}
		logins[i] = page[i]
		logins[i].State, logins[i].UpdatedAt = fmt.Appendf(nil, "login %d", i), at(time.Hour)
		s := stores[i%len(stores)]
		if i%2 == 0 {
			_, err := s.Update(t.Context(), logins[i])
			return struct{}{}, err
		}
		return struct{}{}, s.CommitDecision(t.Context(), framework.DecisionWrite{
			Update: &logins[i], ResetUser: logins[i].UserID,
			Audit: []framework.AuditEntry{{Time: base, Event: framework.EventVerify, UserID: logins[i].UserID, Provider: "totp", Outcome: "allow"}},
		})
	})
	if err := errs[len(page)]; err != nil {
		t.Fatalf("ResealEnrollments: %v", err)
	}
	for i, e := range page {
		want := afterReseal(e, batch[i])
		loginWon := errs[i] == nil
		switch {
		case errs[i] != nil && !errors.Is(errs[i], framework.ErrConflict):
			t.Fatalf("login %d: %v", i, errs[i])
		case loginWon == written[i]:
			t.Errorf("%s: login won %v, batch wrote %v: want exactly one", e.UserID, loginWon, written[i])
			continue
		case loginWon:
			want = logins[i]
			want.Version = e.Version + 1
		}
		check(t, e.UserID+" after the race", mustGet(t, stores[0], e.UserID, e.Provider), want)
	}
	batchWon := 0
	for _, w := range written {
		if w {
			batchWon++
		}
	}
	t.Logf("of %d rows, logins won %d and the batch %d", len(page), len(page)-batchWon, batchWon)
	for _, e := range page {
		if err := stores[0].Delete(t.Context(), e.UserID, e.Provider); err != nil {
			t.Fatal(err)
		}
	}
}
