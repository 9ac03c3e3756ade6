package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// testRecoveryUsesRacingReplacement is RecoveryUsesRacingReplacement on
// one store.
func testRecoveryUsesRacingReplacement(t *testing.T, s framework.Store) {
	RecoveryUsesRacingReplacement(t, s)
}

// RecoveryUsesRacingReplacement: every code of a user used at once,
// spread over stores (several stores on one database stand for
// replicas), while a replacement of the set runs. Each use either commits
// before the replacement or finds its code gone (ErrConflict); the counts
// of codes left that the committed uses report are n-1, n-2, ... with
// none twice or missing (the uses and the replacement ran one after the
// other), nothing fails, and the user has exactly the new set afterwards.
//
// The old set is stored in the reverse of hash order, the order a batch
// of decisions may delete its codes in, so that a replacement deleting
// the rows in stored order meets a batch's codes the other way round. The
// replacement starts when the first use has returned: while the uses that
// arrived meanwhile are being committed together, in one batch.
func RecoveryUsesRacingReplacement(t *testing.T, stores ...framework.Store) {
	const codes, newCodes, rounds = 16, 4, 40
	for round := range rounds {
		user := fmt.Sprintf("user%d", round)
		var old, fresh [][]byte
		for i := range codes {
			old = append(old, fmt.Appendf(nil, "old-%02d", codes-1-i))
		}
		for i := range newCodes {
			fresh = append(fresh, fmt.Appendf(nil, "new-%02d", i))
		}
		if err := stores[0].ReplaceRecoveryCodes(t.Context(), user, old, base); err != nil {
			t.Fatal(err)
		}
		var replaced error
		var replacer sync.WaitGroup
		first := make(chan struct{})
		var once sync.Once
		replacer.Go(func() {
			<-first
			replaced = stores[len(stores)-1].ReplaceRecoveryCodes(t.Context(), user, fresh, base)
		})
		lefts, errs := burst.Run2(codes, func(i int) (int, error) {
			d := recoveryAllow(user, old[i])
			err := stores[i%len(stores)].CommitDecision(t.Context(), d)
			once.Do(func() { close(first) })
			return d.UseRecovery.Left, err
		})
		replacer.Wait()
		if replaced != nil {
			t.Fatalf("round %d: replacement: %v", round, replaced)
		}
		var got []int
		for i, err := range errs {
			switch {
			case err == nil:
				got = append(got, lefts[i])
			case !errors.Is(err, framework.ErrConflict):
				t.Fatalf("round %d: use of code %d: %v", round, i, err)
			}
		}
		slices.Sort(got)
		slices.Reverse(got)
		for k, left := range got {
			if left != codes-1-k {
				t.Fatalf("round %d: %d uses committed before the replacement counted %v left; want %d down to %d",
					round, len(got), got, codes-1, codes-len(got))
			}
		}
		if n, err := stores[0].CountRecoveryCodes(t.Context(), user); err != nil || n != len(fresh) {
			t.Fatalf("round %d: %d codes after the replacement (%v), want the new set's %d", round, n, err, len(fresh))
		}
		for _, h := range fresh {
			if has, err := stores[0].HasRecoveryCode(t.Context(), user, h); err != nil || !has {
				t.Fatalf("round %d: new code %q missing after the replacement (%v)", round, h, err)
			}
		}
	}
}

// testFirstRecoveryCodesOnce is FirstRecoveryCodesOnce on one store.
func testFirstRecoveryCodesOnce(t *testing.T, s framework.Store) {
	FirstRecoveryCodesOnce(t, s)
}

// FirstRecoveryCodesOnce: IssueRecoveryCodes with FirstOnly stores a set
// only for a user who has no code. A burst of first sets for one user,
// spread over stores (several stores on one database stand for
// replicas), stores exactly one: one call reports it, the user has that
// set and nothing of the others, and one audit entry records it. Once
// the user has codes, a first set writes nothing (no entry); once they
// are dropped, one is issued again.
func FirstRecoveryCodesOnce(t *testing.T, stores ...framework.Store) {
	const rounds = 10
	ctx := t.Context()
	set := func(user string, i int) [][]byte {
		return [][]byte{fmt.Appendf(nil, "%s-set%d-a", user, i), fmt.Appendf(nil, "%s-set%d-b", user, i)}
	}
	first := func(user string, i int) framework.RecoveryIssue {
		in := issued(user, set(user, i)...)
		in.FirstOnly = true
		return in
	}
	entries := func(user string) int {
		list, err := stores[0].ListAudit(ctx, framework.AuditQuery{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	for round := range rounds {
		user := fmt.Sprintf("user%d", round)
		won, errs := burst.Run2(concurrency, func(i int) (bool, error) {
			return stores[i%len(stores)].IssueRecoveryCodes(ctx, first(user, i))
		})
		winner := -1
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: first set %d: %v", round, i, err)
			}
			if won[i] {
				if winner >= 0 {
					t.Fatalf("round %d: first sets %d and %d both stored", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no first set stored", round)
		}
		for i := range concurrency {
			for _, h := range set(user, i) {
				if has, err := stores[len(stores)-1].HasRecoveryCode(ctx, user, h); err != nil || has != (i == winner) {
					t.Fatalf("round %d: code %s of set %d (stored: %d): has %v %v", round, h, i, winner, has, err)
				}
			}
		}
		if n := entries(user); n != 1 {
			t.Fatalf("round %d: %d audit entries, want the stored set's 1", round, n)
		}
	}

	// The user has codes: a first set writes nothing.
	if ok, err := stores[0].IssueRecoveryCodes(ctx, first("user0", 99)); ok || err != nil {
		t.Errorf("a first set for a user with codes: %v %v, want false", ok, err)
	}
	if has, _ := stores[0].HasRecoveryCode(ctx, "user0", set("user0", 99)[0]); has {
		t.Error("a first set for a user with codes was stored")
	}
	if n := entries("user0"); n != 1 {
		t.Errorf("%d audit entries, want 1: a first set not stored is not audited", n)
	}
	// The codes dropped (a reset): the next first set is issued.
	if err := stores[0].ReplaceRecoveryCodes(ctx, "user0", nil, base); err != nil {
		t.Fatal(err)
	}
	if ok, err := stores[len(stores)-1].IssueRecoveryCodes(ctx, first("user0", 98)); !ok || err != nil {
		t.Errorf("a first set once the codes were dropped: %v %v, want true", ok, err)
	}
}

func testFirstCodesWithActivation(t *testing.T, s framework.Store) {
	FirstCodesWithActivation(t, s)
}

// FirstCodesWithActivation: an activation's first recovery codes
// (DecisionWrite.FirstCodes) are written in its transaction, only if the
// user has no code then. A burst of activations of one user's pending
// enrollments in distinct providers, spread over stores (replicas), each
// with its own set: every activation is written, exactly one set is
// (Issued on that decision alone), the user has it and nothing of the
// others, and one issue is audited besides the activations' entries. An
// activation whose compare-and-swap loses writes no codes; one for a user
// who has codes writes the activation and no codes.
func FirstCodesWithActivation(t *testing.T, stores ...framework.Store) {
	ctx := t.Context()
	set := func(i int) [][]byte {
		return [][]byte{fmt.Appendf(nil, "first-%d-a", i), fmt.Appendf(nil, "first-%d-b", i)}
	}
	activation := func(p framework.Enrollment, i int) framework.DecisionWrite {
		e := activated(p, []byte("active"), at(time.Minute))
		in := issued(p.UserID, set(i)...)
		in.FirstOnly = true
		return framework.DecisionWrite{Update: &e,
			Audit:      []framework.AuditEntry{{Time: at(time.Minute), Event: framework.EventEnrollConfirm, UserID: p.UserID, Provider: p.Provider, Outcome: "active"}},
			FirstCodes: &framework.FirstCodes{Issue: in}}
	}
	pending := make([]framework.Enrollment, concurrency)
	for i := range pending {
		pending[i] = mustPut(t, stores[0], newPending("alice", fmt.Sprintf("p%02d", i), []byte("pending")))
	}
	writes := make([]framework.DecisionWrite, concurrency)
	for i := range writes {
		writes[i] = activation(pending[i], i)
	}
	errs := burst.Run(concurrency, func(i int) error {
		return stores[i%len(stores)].CommitDecision(ctx, writes[i])
	})
	winner := -1
	for i, err := range errs {
		if err != nil {
			t.Fatalf("activation %d: %v", i, err)
		}
		if writes[i].FirstCodes.Issued {
			if winner >= 0 {
				t.Fatalf("activations %d and %d both wrote their first codes", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no activation wrote its first codes")
	}
	last := stores[len(stores)-1]
	for i := range concurrency {
		if got := mustGet(t, last, "alice", pending[i].Provider); got.Status != framework.StatusActive {
			t.Errorf("activation %d not written: %+v", i, got)
		}
		for _, h := range set(i) {
			if has, err := last.HasRecoveryCode(ctx, "alice", h); err != nil || has != (i == winner) {
				t.Fatalf("code %s of set %d (written: %d): has %v %v", h, i, winner, has, err)
			}
		}
	}
	list, err := stores[0].ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	issues := 0
	for _, e := range list {
		if e.Event == framework.EventRecoveryIssued {
			issues++
		}
	}
	if issues != 1 || len(list) != concurrency+1 {
		t.Errorf("audit: %d issues in %d entries, want 1 in %d (the activations' and the one set's)", issues, len(list), concurrency+1)
	}

	// A lost compare-and-swap writes nothing of the decision, codes
	// included.
	p := mustPut(t, stores[0], newPending("bob", "totp", []byte("pending")))
	stale := activation(p, 90)
	mustUpdate(t, stores[0], activated(p, []byte("other"), at(time.Minute)))
	if err := last.CommitDecision(ctx, stale); !errors.Is(err, framework.ErrConflict) || stale.FirstCodes.Issued {
		t.Errorf("a stale activation with first codes: %v, issued %v; want ErrConflict, none", err, stale.FirstCodes.Issued)
	}
	if n, err := last.CountRecoveryCodes(ctx, "bob"); err != nil || n != 0 {
		t.Errorf("codes after a stale activation: %d %v, want none", n, err)
	}
}
