package storetest

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// testCountSends: each key's window holds limit.Max sends; a full window
// refuses the whole count (no other key is counted), with RetryAt the
// latest end of the full windows; a passed window starts again; a user's
// window is the one ReservePush counts in; no enrollment is needed.
func testCountSends(t *testing.T, s framework.Store) {
	ctx := t.Context()
	limit := framework.PushLimit{Max: 2, Window: 10 * time.Minute}
	alice := framework.SendKey{Subject: "alice", Provider: "email"}
	bob := framework.SendKey{Subject: "bob", Provider: "email"}
	dest := framework.DestinationKey("email", "victim@x.example")
	count := func(now time.Time, keys ...framework.SendKey) time.Time {
		t.Helper()
		r, err := s.CountSends(ctx, keys, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := count(at(0), alice, dest); !r.IsZero() {
		t.Fatalf("first send: RetryAt %v", r)
	}
	if r := count(at(time.Minute), bob, dest); !r.IsZero() {
		t.Fatalf("second send to the destination: RetryAt %v", r)
	}
	// The destination is full: bob's own window is not counted either.
	if r := count(at(2*time.Minute), bob, dest); timeDiff(r, at(10*time.Minute)) != "" {
		t.Fatalf("third send to the destination: RetryAt %v, want the window's end %v", r, at(10*time.Minute))
	}
	if r := count(at(3*time.Minute), bob); !r.IsZero() {
		t.Fatalf("bob's second send elsewhere (his refused one must not have counted): RetryAt %v", r)
	}
	if r := count(at(4*time.Minute), bob); timeDiff(r, at(11*time.Minute)) != "" {
		t.Fatalf("bob's third send: RetryAt %v, want his window's end %v", r, at(11*time.Minute))
	}
	// Two full windows: the later end.
	if r := count(at(5*time.Minute), dest, bob); timeDiff(r, at(11*time.Minute)) != "" {
		t.Fatalf("two full windows: RetryAt %v, want the later end %v", r, at(11*time.Minute))
	}
	// The destination's window has passed: it starts again.
	if r := count(at(10*time.Minute), alice, dest); !r.IsZero() {
		t.Fatalf("send after the window: RetryAt %v", r)
	}
	if r := count(at(11*time.Minute), framework.DestinationKey("email", " VICTIM@x.example")); !r.IsZero() {
		t.Fatalf("the same address, spelled otherwise, second in its new window: RetryAt %v", r)
	}
	if r := count(at(12*time.Minute), dest); timeDiff(r, at(20*time.Minute)) != "" {
		t.Fatalf("third in the new window: RetryAt %v, want %v", r, at(20*time.Minute))
	}

	// A user's window is ReservePush's: the sends counted here leave
	// carol one push of two.
	active(t, s, "carol", "email")
	carol := framework.SendKey{Subject: "carol", Provider: "email"}
	if r := count(at(0), carol); !r.IsZero() {
		t.Fatalf("carol's send: RetryAt %v", r)
	}
	tx := newTx("c1", "carol", "email")
	tx.ProviderTxID = ""
	if r, err := s.ReservePush(ctx, tx, at(time.Minute), limit); err != nil || r.Existing != nil || !r.RetryAt.IsZero() {
		t.Fatalf("carol's push after one send: %+v %v", r, err)
	}
	if err := s.DeleteTransaction(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if r := count(at(2*time.Minute), carol); timeDiff(r, at(10*time.Minute)) != "" {
		t.Fatalf("carol's third send (one counted by ReservePush): RetryAt %v, want %v", r, at(10*time.Minute))
	}
}

// testCountSendsBurst: of a burst of counts from two users to one
// destination, exactly limit.Max pass, whatever the interleaving, and
// counts over overlapping keys do not deadlock.
func testCountSendsBurst(t *testing.T, s framework.Store) {
	limit := framework.PushLimit{Max: 3, Window: 10 * time.Minute}
	dest := framework.DestinationKey("email", "victim@x.example")
	got := burst.Count(concurrency, func(i int) string {
		user := framework.SendKey{Subject: []string{"mallory", "trudy"}[i%2], Provider: "email"}
		keys := []framework.SendKey{user, dest}
		if i%4 >= 2 {
			keys = []framework.SendKey{dest, user} // either order
		}
		r, err := s.CountSends(t.Context(), keys, at(0), limit)
		switch {
		case err != nil:
			t.Error(err)
			return "error"
		case r.IsZero():
			return "counted"
		}
		return "refused"
	})
	if got["counted"] != limit.Max || got["refused"] != concurrency-limit.Max {
		t.Errorf("counted %d, refused %d; want %d and %d", got["counted"], got["refused"], limit.Max, concurrency-limit.Max)
	}
}
