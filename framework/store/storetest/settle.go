package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// settleFixture is alice's expired push "sent", reserved and sent as a
// push is, and the settle of a fraud report on it: one failure that locks
// for an hour, and its audit entry.
func settleFixture(t *testing.T, s framework.Store) framework.PushSettle {
	t.Helper()
	active(t, s, "alice", "duo")
	tx := newTx("sent", "alice", "duo")
	if r, err := s.ReservePush(t.Context(), tx, base, framework.PushLimit{Max: 100, Window: time.Hour}); err != nil || r.Existing != nil || r.Unsettled != nil || !r.RetryAt.IsZero() {
		t.Fatalf("ReservePush = %+v, %v", r, err)
	}
	return framework.PushSettle{
		TxID:    "sent",
		Audit:   []framework.AuditEntry{{Time: at(10 * time.Minute), Event: framework.EventVerify, UserID: "alice", Provider: "duo", Audience: framework.AudienceStaff, Outcome: "deny", Reason: "fraud"}},
		Failure: &framework.Failure{UserID: "alice", Budget: framework.BudgetFactor, LockUntil: func(int) time.Time { return at(time.Hour) }},
	}
}

// testSettlePush: of a burst of settles of one push, one writes it all
// (the push gone, one failure counted with its lock, one audit entry) and
// the others get ErrNotFound and write nothing; then a push is reserved
// again.
func testSettlePush(t *testing.T, s framework.Store) {
	ctx := t.Context()
	settle := settleFixture(t, s)
	_, errs := burst.Run2(concurrency, func(int) (framework.Attempts, error) { return s.SettlePush(ctx, settle) })
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, framework.ErrNotFound):
			t.Errorf("SettlePush: %v, want nil or ErrNotFound", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d simultaneous settles of one push wrote, want 1", won, concurrency)
	}
	a, err := s.Attempts(ctx, "alice", framework.BudgetFactor)
	if err != nil || a.Failures != 1 || timeDiff(a.LockedUntil, at(time.Hour)) != "" {
		t.Errorf("after the settles: %+v, %v; want 1 failure locked until %v", a, err, at(time.Hour))
	}
	if n := countAudit(t, s, "fraud"); n != 1 {
		t.Errorf("%d audit entries of the settle, want 1", n)
	}
	if _, err := s.GetTransaction(ctx, "alice", "sent"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("the settled push: %v, want it gone", err)
	}
	next := newTx("next", "alice", "duo")
	next.CreatedAt = at(10 * time.Minute)
	if r, err := s.ReservePush(ctx, next, at(10*time.Minute), framework.PushLimit{Max: 100, Window: time.Hour}); err != nil || r.Unsettled != nil || r.Existing != nil {
		t.Errorf("ReservePush after the settle = %+v, %v; want reserved", r, err)
	}
}

// testSettlePushStale: a settle whose enrollment update lost its
// compare-and-swap is ErrConflict and writes nothing: the push is kept.
func testSettlePushStale(t *testing.T, s framework.Store) {
	ctx := t.Context()
	settle := settleFixture(t, s)
	e, err := s.Get(ctx, "alice", "duo")
	if err != nil {
		t.Fatal(err)
	}
	e.State, e.Version = []byte("stale"), e.Version-1
	settle.Update = &e
	if _, err := s.SettlePush(ctx, settle); !errors.Is(err, framework.ErrConflict) {
		t.Errorf("SettlePush with a stale update: %v, want ErrConflict", err)
	}
	if _, err := s.GetTransaction(ctx, "alice", "sent"); err != nil {
		t.Errorf("the push after a stale settle: %v, want it kept", err)
	}
	if a, err := s.Attempts(ctx, "alice", framework.BudgetFactor); err != nil || a.Failures != 0 {
		t.Errorf("after a stale settle: %+v, %v; want nothing counted", a, err)
	}
	if n := countAudit(t, s, "fraud"); n != 0 {
		t.Errorf("%d audit entries of a stale settle, want 0", n)
	}
}

// countAudit counts alice's audit entries with reason.
func countAudit(t *testing.T, s framework.Store, reason string) int {
	t.Helper()
	list, err := s.ListAudit(t.Context(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list {
		if e.Reason == reason {
			n++
		}
	}
	return n
}
