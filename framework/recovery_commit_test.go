package framework_test

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// lockBeforeRecoveryCommit is a SQLite store with a real fault at one
// moment: just before the commit of an allow by recovery code, another
// connection takes the database's write lock (BEGIN IMMEDIATE) and keeps
// it until that commit has returned, so the commit fails on SQLite's busy
// timeout, as it does behind another process's long write. Everything
// before it (the gate's reservation, the code's check) went through.
type lockBeforeRecoveryCommit struct {
	framework.Store
	tb    testing.TB
	path  string
	armed atomic.Bool
	err   error // the failed commit's error
}

func (s *lockBeforeRecoveryCommit) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	if !recoveryAllow(d) || !s.armed.CompareAndSwap(true, false) {
		return s.Store.CommitDecision(ctx, d)
	}
	db, err := sql.Open("sqlite", "file:"+s.path)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		s.tb.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	s.err = s.Store.CommitDecision(ctx, d)
	return s.err
}

func recoveryAllow(d framework.DecisionWrite) bool {
	for _, e := range d.Audit {
		if e.Provider == framework.RecoveryProvider && e.Outcome == string(sdk.Allow) {
			return true
		}
	}
	return false
}

// TestRecoveryCodeKeptWhenCommitFails: a recovery code is used up by the
// commit of the decision that accepts it, not before: when that commit
// fails (a real lock held by another connection), the user is refused with
// a store error and keeps the code, which then lets them in, once.
func TestRecoveryCodeKeptWhenCommitFails(t *testing.T) {
	store, path := openStore(t)
	faulty := &lockBeforeRecoveryCommit{Store: store, tb: t, path: path}
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	e.fw = startFramework(t, faulty, e.key, e.clk, 0, inProcess())
	secret := e.begin(t, "alice")
	codes := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now())).RecoveryCodes
	if len(codes) == 0 {
		t.Fatal("no recovery codes issued")
	}
	in := framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider, Audience: framework.AudienceStaff, Code: codes[0]}

	faulty.armed.Store(true)
	res, err := e.fw.Verify(t.Context(), in)
	if faulty.err == nil {
		t.Fatal("the fault did not fail the commit: the test proved nothing")
	}
	if err == nil || res.Outcome == sdk.Allow {
		t.Fatalf("recovery code whose commit failed (%v): %+v, %v; want an error", faulty.err, res, err)
	}
	t.Logf("commit failed: %v; answered: %v", faulty.err, err)
	if n, _ := store.CountRecoveryCodes(t.Context(), "alice"); n != len(codes) {
		t.Errorf("%d codes left after the failed commit, want %d", n, len(codes))
	}

	if res, err := e.fw.Verify(t.Context(), in); err != nil || res.Outcome != sdk.Allow {
		t.Fatalf("the code after the failed commit: %+v, %v; want allow", res, err)
	}
	if res, err := e.fw.Verify(t.Context(), in); err != nil || res.Outcome != sdk.Deny || res.Reason != sdk.ReasonInvalidCode {
		t.Fatalf("the code a second time: %+v, %v; want deny/invalid_code", res, err)
	}
	if n, _ := store.CountRecoveryCodes(t.Context(), "alice"); n != len(codes)-1 {
		t.Errorf("%d codes left after one use, want %d", n, len(codes)-1)
	}
}
