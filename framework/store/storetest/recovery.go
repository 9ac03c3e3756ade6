package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// useCode does what the framework does with a recovery code: checks it,
// then commits an allow that uses it up. It reports whether the allow was
// recorded; ErrConflict (the code was used first) is a false.
func useCode(t *testing.T, s framework.Store, user string, hash []byte) bool {
	t.Helper()
	has, err := s.HasRecoveryCode(t.Context(), user, hash)
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		return false
	}
	err = s.CommitDecision(t.Context(), recoveryAllow(user, hash))
	if errors.Is(err, framework.ErrConflict) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// recoveryAllow is the decision of an allow by recovery code.
func recoveryAllow(user string, hash []byte) framework.DecisionWrite {
	return framework.DecisionWrite{
		Audit:       []framework.AuditEntry{{Time: base, Event: framework.EventVerify, UserID: user, Provider: framework.RecoveryProvider, Outcome: "allow"}},
		ResetUser:   user,
		UseRecovery: &framework.RecoveryUse{UserID: user, Hash: hash},
	}
}

// testDropRecoveryCodesUnlessActive: the codes of a user with no active
// enrollment (none, or only a pending one) are dropped; those of a user
// with one stay, and other users' codes are never touched.
func testDropRecoveryCodesUnlessActive(t *testing.T, s framework.Store) {
	ctx := t.Context()
	codes := [][]byte{[]byte("code-1"), []byte("code-2")}
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := s.ReplaceRecoveryCodes(ctx, u, codes, base); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, newPending("alice", "totp", []byte("pending")))
	active(t, s, "bob", "totp")
	mustPut(t, s, newPending("bob", "duo", []byte("pending")))
	for _, tc := range []struct {
		user        string
		wantDropped bool
		wantLeft    int
	}{
		{"alice", true, 0}, // only a pending enrollment
		{"bob", false, 2},  // an active one beside a pending one
		{"carol", true, 0}, // none at all
		{"dave", false, 0}, // no codes to drop
	} {
		dropped, err := s.DropRecoveryCodesUnlessActive(ctx, tc.user)
		if err != nil || dropped != tc.wantDropped {
			t.Errorf("DropRecoveryCodesUnlessActive(%s) = %v, %v; want %v", tc.user, dropped, err, tc.wantDropped)
		}
		if n, err := s.CountRecoveryCodes(ctx, tc.user); err != nil || n != tc.wantLeft {
			t.Errorf("%s's codes left: %d %v, want %d", tc.user, n, err, tc.wantLeft)
		}
	}
}

func testRecoveryReplaceAndUse(t *testing.T, s framework.Store) {
	r := framework.RecoveryStore(s)
	old := [][]byte{[]byte("old-1"), []byte("old-2")}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", old, base); err != nil {
		t.Fatal(err)
	}
	if err := r.ReplaceRecoveryCodes(t.Context(), "bob", [][]byte{[]byte("old-1")}, base); err != nil {
		t.Fatal(err)
	}
	fresh := [][]byte{[]byte("new-1"), []byte("new-2"), []byte("new-3")}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", fresh, base); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
	if useCode(t, s, "alice", []byte("old-1")) {
		t.Error("a replaced code still works")
	}
	if has, _ := r.HasRecoveryCode(t.Context(), "alice", []byte("new-2")); !has {
		t.Error("a fresh code is not there")
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 3 {
		t.Errorf("count after checking a code = %d, want 3: checking uses nothing", n)
	}
	if !useCode(t, s, "alice", []byte("new-2")) {
		t.Error("a fresh code did not work")
	}
	if useCode(t, s, "alice", []byte("new-2")) {
		t.Error("a code worked twice")
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 2 {
		t.Errorf("count after use = %d, want 2", n)
	}
	if useCode(t, s, "bob", []byte("new-1")) {
		t.Error("bob used alice's code")
	}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", nil, base); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 0 {
		t.Errorf("count after dropping = %d", n)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "bob"); n != 1 {
		t.Errorf("bob's codes changed: %d", n)
	}
}

// testRecoveryConcurrentUse: one code, used by concurrent decisions (one
// group-committed batch, or several): exactly one is recorded.
func testRecoveryConcurrentUse(t *testing.T, s framework.Store) {
	r := framework.RecoveryStore(s)
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", [][]byte{[]byte("c")}, base); err != nil {
		t.Fatal(err)
	}
	wins := burst.Count(concurrency, func(int) bool {
		err := s.CommitDecision(t.Context(), recoveryAllow("alice", []byte("c")))
		if err != nil && !errors.Is(err, framework.ErrConflict) {
			t.Error(err)
		}
		return err == nil
	})
	if wins[true] != 1 {
		t.Errorf("%d requests used one code", wins[true])
	}
	if list, _ := s.ListAudit(t.Context(), framework.AuditQuery{UserID: "alice"}); len(list) != 1 {
		t.Errorf("%d audit entries, want the winner's alone", len(list))
	}
}

// testDecisionUsesRecovery: a recovery code is used up by the decision
// that accepts it and by nothing else. A decision whose code is gone is
// ErrConflict and writes nothing of itself (no audit entry, no reset of
// the budget); a decision that is refused writes nothing and leaves the
// code; a code may not ride with an enrollment update.
func testDecisionUsesRecovery(t *testing.T, s framework.Store) {
	ctx := t.Context()
	if err := s.ReplaceRecoveryCodes(ctx, "alice", [][]byte{[]byte("c1"), []byte("c2")}, base); err != nil {
		t.Fatal(err)
	}
	e := active(t, s, "alice", "totp")
	audits := func() int {
		list, err := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	// Refused before the commit: nothing written, the code still there.
	upd := e
	upd.State = []byte("with a code")
	both := recoveryAllow("alice", []byte("c1"))
	both.Update = &upd
	if err := s.CommitDecision(ctx, both); err == nil || errors.Is(err, framework.ErrConflict) {
		t.Errorf("a decision with an update and a recovery code: %v, want an error", err)
	}
	for _, bad := range []*framework.RecoveryUse{{UserID: "alice"}, {Hash: []byte("c1")}} {
		d := recoveryAllow("alice", []byte("c1"))
		d.UseRecovery = bad
		if err := s.CommitDecision(ctx, d); err == nil {
			t.Errorf("a recovery use %+v was accepted", *bad)
		}
	}
	if got, _ := s.Get(ctx, "alice", "totp"); got.Version != e.Version {
		t.Errorf("a refused decision wrote the enrollment: v%d", got.Version)
	}
	if n := audits(); n != 0 {
		t.Errorf("%d audit entries after refused decisions, want 0", n)
	}

	// Used: the code goes with the audit entry and the reset.
	if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetRecovery, at(0), lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitDecision(ctx, recoveryAllow("alice", []byte("c1"))); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.HasRecoveryCode(ctx, "alice", []byte("c1")); has {
		t.Error("the code used by a recorded decision is still there")
	}
	if has, _ := s.HasRecoveryCode(ctx, "alice", []byte("c2")); !has {
		t.Error("the other code went too")
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetRecovery); a != (framework.Attempts{}) {
		t.Errorf("budget after the allow: %+v", a)
	}

	// Used again: a conflict, and nothing of the decision is written.
	if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetRecovery, at(0), lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a second use of a code", s.CommitDecision(ctx, recoveryAllow("alice", []byte("c1"))), framework.ErrConflict)
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetRecovery); a.Failures != 1 {
		t.Errorf("a conflicting decision reset the budget: %+v", a)
	}
	if n := audits(); n != 1 {
		t.Errorf("%d audit entries, want 1: the conflicting decision's is not written", n)
	}
	// Another user's code of the same hash is theirs.
	if err := s.ReplaceRecoveryCodes(ctx, "bob", [][]byte{[]byte("c2")}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitDecision(ctx, recoveryAllow("bob", []byte("c2"))); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.HasRecoveryCode(ctx, "alice", []byte("c2")); !has {
		t.Error("bob's use took alice's code")
	}
}

// testRecoveryCountsLeft: a decision that uses a recovery code is told how
// many of the user's codes are left once it is gone (RecoveryUse.Left),
// and its first audit entry says the same; decisions using different
// codes of one user at once each get their own count: together exactly
// n-1, n-2, ..., never one count twice.
func testRecoveryCountsLeft(t *testing.T, s framework.Store) {
	ctx := t.Context()
	hashes := make([][]byte, concurrency+2)
	for i := range hashes {
		hashes[i] = fmt.Appendf(nil, "code-%d", i)
	}
	if err := s.ReplaceRecoveryCodes(ctx, "alice", hashes, base); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRecoveryCodes(ctx, "bob", hashes[:1], base); err != nil {
		t.Fatal(err)
	}
	d := recoveryAllow("alice", hashes[0])
	d.Audit[0].Details = map[string]string{"other": "kept"}
	if err := s.CommitDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if d.UseRecovery.Left != len(hashes)-1 {
		t.Errorf("Left = %d after one use of %d codes, want %d", d.UseRecovery.Left, len(hashes), len(hashes)-1)
	}
	list, err := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
	if err != nil || len(list) != 1 {
		t.Fatalf("audit: %v %v", list, err)
	}
	want := map[string]string{"other": "kept", framework.DetailRecoveryCodesLeft: fmt.Sprint(len(hashes) - 1)}
	if !reflect.DeepEqual(list[0].Details, want) {
		t.Errorf("audit details %v, want %v", list[0].Details, want)
	}
	if d.Audit[0].Details[framework.DetailRecoveryCodesLeft] != "" {
		t.Error("the store changed the caller's details map")
	}

	// The rest at once, one decision per code.
	rest := hashes[1 : concurrency+1]
	lefts := burst.Run(len(rest), func(i int) int {
		d := recoveryAllow("alice", rest[i])
		if err := s.CommitDecision(ctx, d); err != nil {
			t.Error(err)
			return 0
		}
		return d.UseRecovery.Left
	})
	slices.Sort(lefts)
	for i, n := range lefts {
		if n != i+1 {
			t.Fatalf("counts of %d codes used at once: %v, want 1..%d, each once", len(rest), lefts, len(rest))
		}
	}
	list, err = s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var audited []int
	for _, e := range list {
		var n int
		fmt.Sscan(e.Details[framework.DetailRecoveryCodesLeft], &n)
		audited = append(audited, n)
	}
	slices.Sort(audited)
	if !slices.Equal(audited, append(lefts, len(hashes)-1)) {
		t.Errorf("audited counts %v, want the answers' %v and %d", audited, lefts, len(hashes)-1)
	}
	if n, _ := s.CountRecoveryCodes(ctx, "alice"); n != 1 {
		t.Errorf("%d codes left in the store, want 1", n)
	}
}

// issued is the issue of a set of recovery codes, with its audit entry.
func issued(user string, hashes ...[]byte) framework.RecoveryIssue {
	return framework.RecoveryIssue{UserID: user, Hashes: hashes, Now: base,
		Audit: framework.AuditEntry{Time: base, Event: framework.EventRecoveryIssued, UserID: user,
			Provider: framework.RecoveryProvider, Outcome: "issued"}}
}

// testRecoveryIssueAudited: IssueRecoveryCodes replaces the user's set
// and writes its audit entry, both or neither: an entry the store cannot
// hold (a time out of its range) fails the issue, and the set before it
// stays, unaudited by it.
func testRecoveryIssueAudited(t *testing.T, s framework.Store) {
	ctx := t.Context()
	audits := func() int {
		list, err := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	for _, tt := range []struct {
		name    string
		in      framework.RecoveryIssue
		wantErr bool
		has     [][]byte // codes alice has after it
		gone    [][]byte // codes alice no longer has
		audits  int
	}{
		{name: "first set", in: issued("alice", []byte("a1"), []byte("a2")),
			has: [][]byte{[]byte("a1"), []byte("a2")}, audits: 1},
		{name: "a new set replaces it", in: issued("alice", []byte("b1"), []byte("b2"), []byte("b3")),
			has: [][]byte{[]byte("b1"), []byte("b3")}, gone: [][]byte{[]byte("a1"), []byte("a2")}, audits: 2},
		{name: "an entry the store cannot hold changes nothing", wantErr: true,
			in: func() framework.RecoveryIssue {
				in := issued("alice", []byte("c1"))
				in.Audit.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
				return in
			}(),
			has: [][]byte{[]byte("b1"), []byte("b2"), []byte("b3")}, gone: [][]byte{[]byte("c1")}, audits: 2},
	} {
		ok, err := s.IssueRecoveryCodes(ctx, tt.in)
		if tt.wantErr != (err != nil) || ok != (err == nil) {
			t.Fatalf("%s: IssueRecoveryCodes = %v, %v; want an error: %v", tt.name, ok, err, tt.wantErr)
		}
		for _, h := range tt.has {
			if has, _ := s.HasRecoveryCode(ctx, "alice", h); !has {
				t.Errorf("%s: code %s missing", tt.name, h)
			}
		}
		for _, h := range tt.gone {
			if has, _ := s.HasRecoveryCode(ctx, "alice", h); has {
				t.Errorf("%s: code %s still there", tt.name, h)
			}
		}
		if n, _ := s.CountRecoveryCodes(ctx, "alice"); !tt.wantErr && n != len(tt.in.Hashes) {
			t.Errorf("%s: %d codes, want %d", tt.name, n, len(tt.in.Hashes))
		}
		if n := audits(); n != tt.audits {
			t.Errorf("%s: %d audit entries, want %d", tt.name, n, tt.audits)
		}
	}
	list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"})
	for _, e := range list {
		if e.Event != framework.EventRecoveryIssued || e.Outcome != "issued" {
			t.Errorf("audit entry %+v, want %s/issued", e, framework.EventRecoveryIssued)
		}
	}
	if !useCode(t, s, "alice", []byte("b2")) {
		t.Error("a code of the issued set does not work")
	}
	if n, _ := s.CountRecoveryCodes(ctx, "bob"); n != 0 {
		t.Errorf("bob has %d codes", n)
	}
}

// testRecoveryIssueActiveOnly: IssueRecoveryCodes with ActiveOnly writes
// only for a user with an active enrollment (a pending one backs
// nothing): neither codes nor audit entry otherwise, and the codes the
// user had stay as they were.
func testRecoveryIssueActiveOnly(t *testing.T, s framework.Store) {
	ctx := t.Context()
	activeOnly := func(in framework.RecoveryIssue, first bool) framework.RecoveryIssue {
		in.ActiveOnly, in.FirstOnly = true, first
		return in
	}
	p := mustPut(t, s, newPending("alice", "totp", []byte("pending")))
	for _, first := range []bool{false, true} {
		if ok, err := s.IssueRecoveryCodes(ctx, activeOnly(issued("alice", []byte("a1")), first)); ok || err != nil {
			t.Fatalf("ActiveOnly (FirstOnly %v) with a pending enrollment only = %v, %v; want false, nil", first, ok, err)
		}
	}
	if n, _ := s.CountRecoveryCodes(ctx, "alice"); n != 0 {
		t.Errorf("%d codes written without an active enrollment", n)
	}
	if list, _ := s.ListAudit(ctx, framework.AuditQuery{UserID: "alice"}); len(list) != 0 {
		t.Errorf("%d audit entries of a set not written", len(list))
	}
	mustUpdate(t, s, activated(p, []byte("confirmed"), at(time.Minute)))
	if ok, err := s.IssueRecoveryCodes(ctx, activeOnly(issued("alice", []byte("b1"), []byte("b2")), true)); !ok || err != nil {
		t.Fatalf("ActiveOnly with an active enrollment = %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.IssueRecoveryCodes(ctx, activeOnly(issued("alice", []byte("c1")), false)); !ok || err != nil {
		t.Fatalf("ActiveOnly replacement with an active enrollment = %v, %v; want true, nil", ok, err)
	}
	if err := s.Delete(ctx, "alice", "totp"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IssueRecoveryCodes(ctx, activeOnly(issued("alice", []byte("d1")), false)); ok || err != nil {
		t.Fatalf("ActiveOnly after the last enrollment was deleted = %v, %v; want false, nil", ok, err)
	}
	if has, _ := s.HasRecoveryCode(ctx, "alice", []byte("c1")); !has {
		t.Error("a refused issue changed the codes the user had")
	}
	if has, _ := s.HasRecoveryCode(ctx, "alice", []byte("d1")); has {
		t.Error("a refused issue wrote its code")
	}
}
