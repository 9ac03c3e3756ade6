package storetest

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// testSameFactors: PutPending keeps Enrollment.Factors, and an activation
// with DecisionWrite.SameFactors is written only while every other active
// factor of the user is one the row's Factors records, by the store's own
// SQL agreeing with framework.FactorsStamp (times with nanoseconds the
// stamp's microseconds drop). A refused one writes nothing of its
// decision.
func testSameFactors(t *testing.T, s framework.Store) {
	ctx := t.Context()
	activate := func(e framework.Enrollment, c time.Time) error {
		upd := activated(e, []byte("active-"+e.Provider), c)
		entry := framework.AuditEntry{Time: c, Event: framework.EventEnrollConfirm, UserID: e.UserID, Provider: e.Provider, Outcome: "active"}
		return s.CommitDecision(ctx, framework.DecisionWrite{Update: &upd, Audit: []framework.AuditEntry{entry}, SameFactors: true})
	}
	put := func(user, provider, factors string) framework.Enrollment {
		t.Helper()
		e := newPending(user, provider, []byte("pending-"+provider))
		e.Factors = factors
		got := mustPut(t, s, e)
		if got.Factors != factors || mustGet(t, s, user, provider).Factors != factors {
			t.Fatalf("PutPending(%q, %q) with factors %q: %q stored", user, provider, factors, got.Factors)
		}
		return got
	}
	// Two setups begun with no factor: the first activates, then the
	// second is refused, and nothing of it is written.
	a, b := put("alice", "a", ""), put("alice", "b", "")
	if err := activate(b, at(time.Minute+123456789)); err != nil {
		t.Fatalf("activation with no other factor: %v", err)
	}
	wantErr(t, "activation begun before another factor", activate(a, at(2*time.Minute)), framework.ErrConflict)
	if got := mustGet(t, s, "alice", "a"); got.Status != framework.StatusPending || got.Version != a.Version {
		t.Errorf("a refused activation wrote: %+v", got)
	}
	if list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"}); len(list) != 1 {
		t.Errorf("%d audit entries, want the first activation's only", len(list))
	}
	// Begun again, recording "b" as the framework does: written.
	a = put("alice", "a", framework.FactorsStamp(mustList(t, s, "alice"), "a"))
	if err := activate(a, at(3*time.Minute)); err != nil {
		t.Errorf("activation that records the user's factor: %v", err)
	}
	// A record of another time of "b" (reset and set up again) or of
	// other factors only is refused; a factor it records that is gone
	// since is no reason.
	for _, factors := range []string{",b@1,", ",c@1,", framework.FactorsUnknown} {
		c := put("alice", "c", factors)
		wantErr(t, "activation recording "+factors, activate(c, at(4*time.Minute)), framework.ErrConflict)
	}
	c := put("alice", "c", framework.FactorsStamp(mustList(t, s, "alice"), "c")+"gone@5,")
	if err := activate(c, at(4*time.Minute)); err != nil {
		t.Errorf("activation recording a factor removed since: %v", err)
	}
	// A row of an earlier release (FactorsUnknown) activates while its
	// user has no other factor.
	if err := activate(put("bob", "a", framework.FactorsUnknown), at(time.Minute)); err != nil {
		t.Errorf("activation of a row recording no factor, for a user with none: %v", err)
	}
}

// PendingFromEarlierRelease checks a store upgraded from the release
// before Enrollment.Factors, which held alice's pending "totp2" (she had
// no factor) and bob's pending "totp2" beside his active "totp": both
// read back recording no factor (framework.FactorsUnknown), so alice's
// activates and bob's is refused, to be begun again.
func PendingFromEarlierRelease(t *testing.T, s framework.Store) {
	t.Helper()
	ctx := t.Context()
	for _, u := range []string{"alice", "bob"} {
		e := mustGet(t, s, u, "totp2")
		if e.Factors != framework.FactorsUnknown || e.Status != framework.StatusPending {
			t.Fatalf("%s's pending enrollment after the upgrade: %+v", u, e)
		}
		upd := activated(e, []byte("active"), at(time.Hour))
		err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &upd, SameFactors: true})
		if u == "alice" && err != nil {
			t.Errorf("alice's setup, begun with no factor and she has none: %v", err)
		}
		if u == "bob" {
			wantErr(t, "bob's setup, begun by an earlier release beside a factor", err, framework.ErrConflict)
		}
	}
	if e := mustGet(t, s, "bob", "totp"); e.Status != framework.StatusActive {
		t.Errorf("bob's factor after the upgrade: %+v", e)
	}
}
