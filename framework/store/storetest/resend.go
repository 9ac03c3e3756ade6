package storetest

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// testReserveResend: a challenge (a transaction with ResendAfter) is
// answered while ResendAfter is ahead, replaced once it has passed, and
// every send counts in the push window it shares with pushes.
func testReserveResend(t *testing.T, s framework.Store) {
	ctx := t.Context()
	active(t, s, "alice", "email")
	limit := framework.PushLimit{Max: 2, Window: 10 * time.Minute}
	send := func(id string, now time.Time) framework.PushReservation {
		t.Helper()
		tx := newTx(id, "alice", "email")
		tx.ProviderTxID, tx.CreatedAt, tx.ExpiresAt = "", now, now.Add(time.Minute)
		r, err := s.ReservePush(ctx, tx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		if r.Existing == nil && r.RetryAt.IsZero() {
			if err := s.SendTransaction(ctx, id, "ptx-"+id, now.Add(5*time.Minute), now.Add(30*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	if r := send("e1", at(0)); r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("first challenge: %+v", r)
	}
	got, err := s.GetTransaction(ctx, "alice", "e1")
	if err != nil || timeDiff(got.ResendAfter, at(30*time.Second)) != "" || got.ProviderTxID != "ptx-e1" {
		t.Fatalf("GetTransaction after send = %+v, %v; want ResendAfter at 30s", got, err)
	}
	if r := send("e2", at(10*time.Second)); r.Existing == nil || r.Existing.ID != "e1" ||
		timeDiff(r.Existing.ResendAfter, at(30*time.Second)) != "" {
		t.Fatalf("challenge before resend_after: %+v, want e1 answered", r)
	}
	if r := send("e3", at(30*time.Second)); r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("challenge at resend_after: %+v, want a new send", r)
	}
	if _, err := s.GetTransaction(ctx, "alice", "e1"); err == nil {
		t.Error("the replaced challenge e1 is still there")
	}
	if r := send("e4", at(time.Minute)); r.Existing != nil || timeDiff(r.RetryAt, at(10*time.Minute)) != "" {
		t.Fatalf("third send in the window: %+v, want RetryAt at the window's end", r)
	}
	if _, err := s.GetTransaction(ctx, "alice", "e3"); err != nil {
		t.Errorf("a send refused by the limit removed the pending challenge: %v", err)
	}
}
