package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgterminate"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestPipelinedBatchUnderHeldLock: logins' decisions, which go to the
// server as one pipeline (writePipelined: no recovery code), while
// another session holds the row locks of their enrollments, as a
// replica's stuck transaction or a backup would. However the wait ends —
// the store's lock_timeout (here set in the DSN, as an admin would), or
// the batch's backend terminated while it waits — every decision fails
// closed: ErrStoreUnavailable within the bound, nothing of it written
// (no state, no audit entry, no reset), and once the lock is gone the
// same decisions commit, each once.
func TestPipelinedBatchUnderHeldLock(t *testing.T) {
	const users = 8
	for _, tc := range []struct {
		name        string
		lockTimeout time.Duration
		terminate   bool
		// bound is how long a decision may take to fail: one lock wait
		// for each batch the decisions may form (at most one each), when
		// only lock_timeout ends them, far below the statement_timeout a
		// stuck wait would hit; less than one lock_timeout when the
		// backend is terminated first.
		bound time.Duration
	}{
		{"lock timeout", 400 * time.Millisecond, false, users*400*time.Millisecond + time.Second},
		{"terminated mid-batch", lockTimeout, true, lockTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := pgterminate.AppName("tf_hung")
			schemaDSN := pgtest.Schema(t)
			dsn := pgtest.WithParam(t, schemaDSN, "application_name", name)
			if tc.lockTimeout != lockTimeout {
				dsn = pgtest.WithParam(t, dsn, "lock_timeout", fmt.Sprint(tc.lockTimeout.Milliseconds()))
			}
			s := mustOpen(t, dsn)
			defer closeStore(t, s)
			ctx := t.Context()
			var stored []framework.Enrollment
			for i := range users {
				e, err := s.PutPending(ctx, pendingEnrollment(fmt.Sprintf("user%d", i), "totp", "seed"))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.ReserveAttempt(ctx, e.UserID, framework.BudgetFactor, reserveNow, lockAt(5)); err != nil {
					t.Fatal(err)
				}
				stored = append(stored, e)
			}
			decision := func(i int) framework.DecisionWrite {
				e := stored[i]
				e.State = []byte("used " + e.UserID)
				return framework.DecisionWrite{Update: &e, ResetUser: e.UserID,
					Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: e.UserID, Provider: "totp", Outcome: "allow"}}}
			}
			commitAll := func() ([]error, []time.Duration) {
				took, errs := burst.Run2(users, func(i int) (time.Duration, error) {
					began := time.Now()
					err := s.CommitDecision(ctx, decision(i))
					return time.Since(began), err
				})
				return errs, took
			}

			locker, err := pgx.Connect(ctx, schemaDSN) // not the store's application_name
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close(context.Background())
			tx, err := locker.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, `SELECT count(*) FROM (SELECT 1 FROM enrollments FOR UPDATE) AS locked`); err != nil {
				t.Fatal(err)
			}

			var killer *pgterminate.Loop
			if tc.terminate {
				// Every backend of the store found waiting for a lock is
				// one of the batches: terminate it while it waits.
				killer = pgterminate.Start(t, pgtest.DSN(t), pgterminate.Options{App: name, LockWaiters: true})
			}
			errs, took := commitAll()
			terminated := killer.Stop()
			for i, err := range errs {
				if !errors.Is(err, framework.ErrStoreUnavailable) {
					t.Errorf("decision %d under the held lock: %v, want ErrStoreUnavailable", i, err)
				}
				if took[i] > tc.bound {
					t.Errorf("decision %d failed after %v; the bound is %v", i, took[i], tc.bound)
				}
			}
			if tc.terminate && terminated == 0 {
				t.Fatal("no batch was terminated while it waited: the test proved nothing")
			}
			t.Logf("failed after %v (slowest); %d backends terminated", slowest(took), terminated)

			// Nothing of any decision was written.
			for _, e := range stored {
				got, err := s.Get(ctx, e.UserID, "totp")
				if err != nil {
					t.Fatal(err)
				}
				if got.Version != e.Version || string(got.State) != "seed" {
					t.Errorf("%s after a failed decision: v%d %q, want v%d \"seed\"", e.UserID, got.Version, got.State, e.Version)
				}
				if a, _ := s.Attempts(ctx, e.UserID, framework.BudgetFactor); a.Failures != 1 {
					t.Errorf("%s's budget after a failed decision: %+v, want its reservation still counted", e.UserID, a)
				}
			}
			if list, err := s.ListAudit(ctx, framework.AuditQuery{}); err != nil || len(list) != 0 {
				t.Errorf("audit after failed decisions: %d entries, %v; want none", len(list), err)
			}

			// The lock gone, the same decisions commit, each once.
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			errs, _ = commitAll()
			for i, err := range errs {
				if err != nil {
					t.Errorf("decision %d after the lock: %v", i, err)
				}
			}
			for _, e := range stored {
				if got, _ := s.Get(ctx, e.UserID, "totp"); got.Version != e.Version+1 || string(got.State) != "used "+e.UserID {
					t.Errorf("%s after the lock: v%d %q, want v%d written once", e.UserID, got.Version, got.State, e.Version+1)
				}
			}
			if list, err := s.ListAudit(ctx, framework.AuditQuery{}); err != nil || len(list) != users {
				t.Errorf("audit after the lock: %d entries, %v; want %d", len(list), err, users)
			}
		})
	}
}

func slowest(took []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range took {
		m = max(m, d)
	}
	return m
}
