package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/groupcommit"
)

var _ framework.DecisionStore = (*Store)(nil)

// decisionArgs is a DecisionWrite turned into statement arguments before
// it joins a batch, so a value the store cannot hold fails its own
// decision, not the batch.
type decisionArgs struct {
	update   []any   // nil when the state did not change
	audits   [][]any // one row each
	reset    string  // user whose attempt runs end, or ""
	refund   []any   // nil for none
	recovery []any   // the recovery code used up, or nil
}

// Statements of a decision, prepared once on the writer connection.
const (
	updateSQL = `
		UPDATE enrollments SET status = ?, state = ?, version = version + 1, updated_at = ?, confirmed_at = ?
		WHERE user_id = ? AND provider = ? AND version = ?`
	auditSQL = `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	resetSQL       = `DELETE FROM attempts WHERE user_id = ?`
	useRecoverySQL = `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`
	refundSQL      = `
		UPDATE attempts SET failures = MAX(failures - 1, 0),
			locked_until = CASE WHEN locked_until = ? THEN ? ELSE locked_until END
		WHERE user_id = ? AND budget = ?`
)

// maxDecisionBatch bounds one transaction.
const maxDecisionBatch = 256

// CommitDecision returns once d is committed with synchronous=FULL: with
// the decisions that arrived while the previous commit was in progress, in
// one transaction (group commit, one fsync for all of them).
func (s *Store) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	a, err := decisionToArgs(d)
	if err != nil {
		return fmt.Errorf("sqlite: commit decision: %w", err)
	}
	if err := s.decisions.Do(ctx, a); err != nil {
		return fmt.Errorf("sqlite: commit decision: %w", err)
	}
	return nil
}

func decisionToArgs(d framework.DecisionWrite) (decisionArgs, error) {
	var a decisionArgs
	if e := d.Update; e != nil {
		if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
			return a, fmt.Errorf("invalid status %q", e.Status)
		}
		updated, err := nanos("UpdatedAt", e.UpdatedAt)
		if err != nil {
			return a, err
		}
		var confirmed any // NULL for the zero time
		if !e.ConfirmedAt.IsZero() {
			if confirmed, err = nanos("ConfirmedAt", e.ConfirmedAt); err != nil {
				return a, err
			}
		}
		a.update = []any{string(e.Status), blob(e.State), updated, confirmed, e.UserID, e.Provider, e.Version}
	}
	for _, e := range d.Audit {
		row, err := auditArgs(e)
		if err != nil {
			return a, err
		}
		a.audits = append(a.audits, row)
	}
	a.reset = d.ResetUser
	if u := d.UseRecovery; u != nil {
		if err := checkRecoveryUse(d); err != nil {
			return a, err
		}
		a.recovery = []any{u.UserID, u.Hash}
	}
	if r := d.Refund; r != nil {
		set, err := unixOrZero("LockedUntil", r.Reservation.LockedUntil)
		if err != nil {
			return a, err
		}
		prev, err := unixOrZero("PrevLockedUntil", r.Reservation.PrevLockedUntil)
		if err != nil {
			return a, err
		}
		a.refund = []any{set, prev, r.UserID, string(r.Budget)}
	}
	return a, nil
}

// checkRecoveryUse refuses a recovery code use the decision writer could
// not make all or nothing: with an Update (two compare-and-swaps), or
// naming no code.
func checkRecoveryUse(d framework.DecisionWrite) error {
	switch u := d.UseRecovery; {
	case d.Update != nil:
		return fmt.Errorf("a decision uses a recovery code or updates an enrollment, not both")
	case u.UserID == "" || len(u.Hash) == 0:
		return fmt.Errorf("recovery code use without a user or hash")
	}
	return nil
}

func auditArgs(e framework.AuditEntry) ([]any, error) {
	at, err := nanos("Time", e.Time)
	if err != nil {
		return nil, err
	}
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return nil, err
	}
	return []any{at, e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, string(d)}, nil
}

// startDecisions prepares the decision statements on the writer
// connection (a transaction then finds them in the cache) and starts the
// writer goroutine.
func (s *Store) startDecisions(ctx context.Context) error {
	for _, q := range []string{updateSQL, auditSQL, resetSQL, refundSQL, useRecoverySQL, reserveReadSQL, reserveUpsertSQL} {
		if _, err := s.w.stmt(ctx, q); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	s.decisions = groupcommit.New(maxDecisionBatch, s.writeDecisions)
	return nil
}

// writeDecisions commits a batch in one transaction on the writer
// connection. A decision whose compare-and-swap finds a newer version, or
// whose recovery code is gone, writes nothing (ErrConflict for it alone);
// any other failure fails the batch, rolled back whole.
func (s *Store) writeDecisions(batch []decisionArgs) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout+5*time.Second)
	defer cancel()
	errs := make([]error, len(batch))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt := func(q string) (*sql.Stmt, error) { return s.txStmt(ctx, tx, q) }
		for i, d := range batch {
			if d.update != nil {
				st, err := stmt(updateSQL)
				if err != nil {
					return err
				}
				r, err := st.ExecContext(ctx, d.update...)
				if err != nil {
					return err
				}
				if n, err := r.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					errs[i] = framework.ErrConflict
					continue
				}
			}
			// Before anything else of the decision is written: a code
			// another decision used first fails this one alone.
			if d.recovery != nil {
				st, err := stmt(useRecoverySQL)
				if err != nil {
					return err
				}
				r, err := st.ExecContext(ctx, d.recovery...)
				if err != nil {
					return err
				}
				if n, err := r.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					errs[i] = framework.ErrConflict
					continue
				}
			}
			for _, row := range d.audits {
				st, err := stmt(auditSQL)
				if err != nil {
					return err
				}
				if _, err := st.ExecContext(ctx, row...); err != nil {
					return err
				}
			}
			if d.reset != "" {
				st, err := stmt(resetSQL)
				if err != nil {
					return err
				}
				if _, err := st.ExecContext(ctx, d.reset); err != nil {
					return err
				}
			}
			if d.refund != nil {
				st, err := stmt(refundSQL)
				if err != nil {
					return err
				}
				if _, err := st.ExecContext(ctx, d.refund...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return errs, err
}
