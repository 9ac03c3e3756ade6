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
