package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

func newTx(id, user, provider string) framework.Transaction {
	return framework.Transaction{
		ID: id, UserID: user, Provider: provider, Audience: framework.AudienceStaff,
		ProviderTxID: "ptx-" + id, CreatedAt: base, ExpiresAt: at(5 * time.Minute),
	}
}

// putTx inserts a transaction as a push does, and fails the test unless it
// was inserted.
func putTx(t *testing.T, s framework.Store, tx framework.Transaction) {
	t.Helper()
	r, err := s.ReservePush(t.Context(), tx, tx.CreatedAt, framework.DefaultPushLimit)
	if err != nil || r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("ReservePush(%s) = %+v, %v; want it inserted", tx.ID, r, err)
	}
}

func testTransactionRoundTrip(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	tx := newTx("tx1", "alice", "duo")
	tx.Session = framework.SessionKey("login-1")
	putTx(t, s, tx)
	got, err := s.GetTransaction(t.Context(), "alice", "tx1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tx.ID || got.UserID != tx.UserID || got.Provider != tx.Provider || got.Audience != tx.Audience || got.Session != tx.Session ||
		got.ProviderTxID != tx.ProviderTxID || timeDiff(got.CreatedAt, tx.CreatedAt) != "" || timeDiff(got.ExpiresAt, tx.ExpiresAt) != "" {
		t.Errorf("GetTransaction = %+v, want %+v (in UTC)", got, tx)
	}
	if err := s.DeleteTransaction(t.Context(), "tx1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetTransaction(t.Context(), "alice", "tx1")
	wantErr(t, "GetTransaction after delete", err, framework.ErrNotFound)
	if err := s.DeleteTransaction(t.Context(), "tx1"); err != nil {
		t.Errorf("deleting a gone transaction: %v", err)
	}
}

// testTransactionTakeOnce: a transaction is taken once, and of a burst of
// takes exactly one succeeds; the others find it gone.
func testTransactionTakeOnce(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	putTx(t, s, newTx("tx1", "alice", "duo"))
	wins := burst.Count(concurrency, func(int) bool {
		err := s.TakeTransaction(t.Context(), "tx1")
		if err != nil && !errors.Is(err, framework.ErrNotFound) {
			t.Error(err)
		}
		return err == nil
	})
	if wins[true] != 1 {
		t.Errorf("%d of %d simultaneous takes succeeded, want 1", wins[true], concurrency)
	}
	_, err := s.GetTransaction(t.Context(), "alice", "tx1")
	wantErr(t, "GetTransaction after a take", err, framework.ErrNotFound)
	wantErr(t, "taking a gone transaction", s.TakeTransaction(t.Context(), "tx1"), framework.ErrNotFound)
}

func testTransactionOtherUser(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	active(t, s, "bob", "duo")
	putTx(t, s, newTx("tx1", "alice", "duo"))
	_, err := s.GetTransaction(t.Context(), "bob", "tx1")
	wantErr(t, "GetTransaction as another user", err, framework.ErrNotFound)
}

func testTransactionNeedsEnrollment(t *testing.T, s framework.Store) {
	_, err := s.ReservePush(t.Context(), newTx("tx1", "alice", "duo"), base, framework.DefaultPushLimit)
	wantErr(t, "ReservePush without enrollment", err, framework.ErrNotFound)
}

func testTransactionGoesWithEnrollment(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	active(t, s, "alice", "totp")
	for _, tx := range []framework.Transaction{newTx("tx1", "alice", "duo"), newTx("tx2", "alice", "totp")} {
		putTx(t, s, tx)
	}
	if err := s.Delete(t.Context(), "alice", "duo"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetTransaction(t.Context(), "alice", "tx1")
	wantErr(t, "transaction of a deleted enrollment", err, framework.ErrNotFound)
	if _, err := s.GetTransaction(t.Context(), "alice", "tx2"); err != nil {
		t.Errorf("another provider's transaction went too: %v", err)
	}
}

// testCountStranded: users with an active enrollment but none in a usable
// provider; pending enrollments are no factor.
func testCountStranded(t *testing.T, s framework.Store) {
	active(t, s, "alice", "totp")
	active(t, s, "alice", "duo")
	active(t, s, "bob", "duo")
	active(t, s, "dave", "totp")
	mustPut(t, s, framework.Enrollment{UserID: "carol", Provider: "totp", Status: framework.StatusPending, State: []byte("s"), CreatedAt: base, UpdatedAt: base})
	for _, tt := range []struct {
		usable []string
		want   int
	}{
		{[]string{"totp"}, 1},
		{[]string{"duo"}, 1},
		{nil, 3},
		{[]string{"duo", "totp"}, 0},
		{[]string{"TOTP"}, 3},
	} {
		if n, err := s.CountStranded(t.Context(), tt.usable); err != nil || n != tt.want {
			t.Errorf("CountStranded(%q) = %d, %v; want %d", tt.usable, n, err, tt.want)
		}
	}
}

// testExpiredPushes: the user's pushes that were sent and expired are
// returned and kept (until settled) and, while one is kept, ReservePush
// reserves nothing for that user, provider and audience (Unsettled); a
// push still pending, one never sent, a code challenge, another
// provider's and another user's are not returned.
func testExpiredPushes(t *testing.T, s framework.Store) {
	ctx := t.Context()
	for _, e := range [][2]string{{"alice", "duo"}, {"alice", "totp"}, {"bob", "duo"}} {
		active(t, s, e[0], e[1])
	}
	reserve := func(tx framework.Transaction, now time.Time) {
		t.Helper()
		tx.CreatedAt = now
		if r, err := s.ReservePush(ctx, tx, now, framework.PushLimit{Max: 100, Window: time.Hour}); err != nil || r.Existing != nil || r.Unsettled != nil || !r.RetryAt.IsZero() {
			t.Fatalf("ReservePush(%s) = %+v, %v", tx.ID, r, err)
		}
	}
	unsent := newTx("unsent", "alice", "duo")
	unsent.ProviderTxID, unsent.ExpiresAt = "", at(time.Minute)
	reserve(unsent, base)                                     // expires unsent at 1m
	reserve(newTx("sent", "alice", "duo"), at(2*time.Minute)) // sent, expires at 5m
	challenge := newTx("challenge", "alice", "duo")
	challenge.Audience, challenge.ProviderTxID = framework.AudienceClient, ""
	reserve(challenge, base)
	if err := s.SendTransaction(ctx, "challenge", "ptx-challenge", at(5*time.Minute), at(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	reserve(newTx("other-provider", "alice", "totp"), base)
	reserve(newTx("other-user", "bob", "duo"), base)

	ids := func(now time.Time) []string {
		t.Helper()
		got, err := s.ExpiredPushes(ctx, "alice", "duo", framework.AudienceStaff, now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tx := range got {
			out = append(out, tx.ID)
			if tx.UserID != "alice" || tx.ProviderTxID != "ptx-sent" || timeDiff(tx.ExpiresAt, at(5*time.Minute)) != "" {
				t.Errorf("expired: %+v", tx)
			}
		}
		return out
	}
	if got := ids(at(4 * time.Minute)); len(got) != 0 {
		t.Errorf("expired pushes at 4m, while sent is pending: %v, want none", got)
	}
	for range 2 { // a read changes nothing
		if got := ids(at(10 * time.Minute)); len(got) != 1 || got[0] != "sent" {
			t.Errorf("expired pushes at 10m: %v, want [sent]", got)
		}
	}
	next := newTx("next", "alice", "duo")
	next.CreatedAt = at(10 * time.Minute)
	r, err := s.ReservePush(ctx, next, at(10*time.Minute), framework.PushLimit{Max: 100, Window: time.Hour})
	if err != nil || r.Unsettled == nil || r.Unsettled.ID != "sent" || r.Existing != nil {
		t.Errorf("ReservePush while sent is unsettled = %+v, %v; want Unsettled sent", r, err)
	}
	if _, err := s.GetTransaction(ctx, "alice", "next"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("a push reserved while another is unsettled: %v, want none", err)
	}
	for _, kept := range []struct{ user, id string }{{"alice", "unsent"}, {"alice", "sent"}, {"alice", "challenge"}, {"alice", "other-provider"}, {"bob", "other-user"}} {
		if _, err := s.GetTransaction(ctx, kept.user, kept.id); err != nil {
			t.Errorf("%s after the reads: %v, want it kept", kept.id, err)
		}
	}
}

// testReservePushPrunes: a reservation deletes the user's transactions
// for the provider and audience that expired more than PruneAfter before
// and hold nothing to settle (a push never sent, a code challenge), so a
// row per code sent no longer stays forever; younger ones, another
// user's, and a refused reservation change nothing.
func testReservePushPrunes(t *testing.T, s framework.Store) {
	active(t, s, "alice", "duo")
	active(t, s, "bob", "duo")
	unsent := newTx("unsent", "alice", "duo")
	unsent.ProviderTxID = "" // its sender died before sending
	putTx(t, s, unsent)
	chal := newTx("chal", "alice", "duo")
	chal.ProviderTxID, chal.CreatedAt, chal.ExpiresAt = "", at(10*time.Minute), at(15*time.Minute)
	putTx(t, s, chal)
	if err := s.SendTransaction(t.Context(), "chal", "ptx-chal", at(15*time.Minute), at(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	bobs := newTx("bobs", "bob", "duo")
	bobs.ProviderTxID = ""
	putTx(t, s, bobs)

	// Half an hour after the challenge expired: kept.
	young := newTx("young", "alice", "duo")
	young.ProviderTxID, young.CreatedAt, young.ExpiresAt = "", at(45*time.Minute), at(50*time.Minute)
	putTx(t, s, young)
	for _, id := range []string{"unsent", "chal"} {
		if _, err := s.GetTransaction(t.Context(), "alice", id); err != nil {
			t.Errorf("%s, expired less than %v ago: %v, want it kept", id, framework.PruneAfter, err)
		}
	}
	// Refused by the limit (one a window): nothing is deleted.
	late := newTx("late", "alice", "duo")
	late.CreatedAt, late.ExpiresAt = at(3*time.Hour), at(3*time.Hour+5*time.Minute)
	strict := framework.PushLimit{Max: 1, Window: 4 * time.Hour}
	if r, err := s.ReservePush(t.Context(), late, late.CreatedAt, strict); err != nil || r.RetryAt.IsZero() {
		t.Fatalf("a reservation past the limit: %+v %v, want refused", r, err)
	}
	if _, err := s.GetTransaction(t.Context(), "alice", "unsent"); err != nil {
		t.Errorf("a refused reservation deleted a transaction: %v", err)
	}
	putTx(t, s, late)
	for _, id := range []string{"unsent", "chal", "young"} {
		_, err := s.GetTransaction(t.Context(), "alice", id)
		wantErr(t, id+", expired more than "+framework.PruneAfter.String()+" before a reservation", err, framework.ErrNotFound)
	}
	if _, err := s.GetTransaction(t.Context(), "bob", "bobs"); err != nil {
		t.Errorf("another user's transaction: %v, want it kept", err)
	}
}
