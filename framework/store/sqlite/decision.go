package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/auditdetails"
	"github.com/twofactor/twofactor/framework/store/internal/groupcommit"
)

var _ framework.DecisionStore = (*Store)(nil)

// decisionArgs is a DecisionWrite turned into statement arguments before
// it joins a batch, so a value the store cannot hold fails its own
// decision, not the batch.
type decisionArgs struct {
	update []any   // nil when the state did not change
	audits [][]any // one row each
	reset  string  // user whose attempt runs end, or ""
	// ticket is the reservation the decision settles (see ledger); failed
	// writes its failure to the stored budget, lock the LockedUntil it set.
	ticket *heldID
	failed bool
	fail   []any // failSQL's arguments when failed
	// recovery is the recovery code used up, or nil; use is where its
	// count of codes left goes, and firstDetails the details of the
	// first audit entry, which gets that count too.
	recovery     []any
	use          *framework.RecoveryUse
	firstDetails map[string]string
	// first are the first recovery codes an activation writes
	// (DecisionWrite.FirstCodes), or nil.
	first *firstCodesArgs
}

// firstCodesArgs is a FirstCodes as statement arguments: the user, one
// row per code, the issue's audit entry, and where Issued goes.
type firstCodesArgs struct {
	user  string
	rows  [][]any
	audit []any
	out   *framework.FirstCodes
}

// Statements of a decision, prepared once on the writer connection.
const (
	// updateSQL's last argument is DecisionWrite.SameFactors: then no
	// other active factor of the user may be missing from the row's
	// factors (framework.FactorsStamp's ",name@µs," tokens). In the
	// batch's transaction, on the one writer: no activation comes between
	// the check and the write.
	updateSQL = `
		UPDATE enrollments SET status = ?1, state = ?2, version = version + 1, updated_at = ?3, confirmed_at = ?4
		WHERE user_id = ?5 AND provider = ?6 AND version = ?7
		AND (?8 = 0 OR NOT EXISTS (
			SELECT 1 FROM enrollments o
			WHERE o.user_id = ?5 AND o.provider <> ?6 AND o.status = 'active'
			AND (o.confirmed_at IS NULL
				OR instr(enrollments.factors, ',' || o.provider || '@' || (o.confirmed_at / 1000) || ',') = 0)))`
	useRecoverySQL = `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`
	// countRecoverySQL counts the codes left after a use, in the use's
	// transaction: the one writer commits in order, so the count is
	// exact for each decision of a batch.
	countRecoverySQL = `SELECT count(*) FROM recovery_codes WHERE user_id = ?`
	// hasRecoverySQL and insertRecoverySQL write an activation's first
	// codes, if the user has none: in the batch's transaction, on the one
	// writer, so no other write comes between the check and the insert.
	// IssueRecoveryCodes and ReplaceRecoveryCodes use them too.
	hasRecoverySQL    = `SELECT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = ?)`
	insertRecoverySQL = `INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (?, ?, ?)`
	// failSQL counts a failed guess, and the lock its reservation set.
	failSQL = `
		INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES (?, ?, 1, ?)
		ON CONFLICT (user_id, budget) DO UPDATE SET failures = attempts.failures + 1,
			locked_until = MAX(attempts.locked_until, excluded.locked_until)`
)

// resetUsers ends the runs of the users of a batch's decisions
// (DecisionWrite.ResetUser), chunked.
var resetUsers = newChunked("DELETE FROM attempts WHERE user_id IN (", "?", ")")

// testHookCommitted, set by tests, runs between a batch's commit and the
// release of its reservations.
var testHookCommitted func()

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
		if a.ticket != nil && !errors.Is(err, framework.ErrConflict) {
			// Not settled and never will be (the caller gives up): let it
			// go. On a conflict the caller decides again, with it held.
			s.ledger.release(*a.ticket)
		}
		return fmt.Errorf("sqlite: commit decision: %w", err)
	}
	return nil
}

func decisionToArgs(d framework.DecisionWrite) (decisionArgs, error) {
	var a decisionArgs
	if e := d.Update; e != nil {
		var err error
		if a.update, err = updateArgs(e, d.SameFactors); err != nil {
			return a, err
		}
	}
	for _, e := range d.Audit {
		row, err := auditArgs(e)
		if err != nil {
			return a, err
		}
		a.audits = append(a.audits, row)
	}
	a.reset = d.ResetUser
	if err := d.CheckRecoveryUse(); err != nil {
		return a, err
	}
	if c := d.FirstCodes; c != nil {
		created, err := nanos("Now", c.Issue.Now)
		if err != nil {
			return a, err
		}
		audit, err := auditArgs(c.Issue.Audit)
		if err != nil {
			return a, err
		}
		f := &firstCodesArgs{user: c.Issue.UserID, audit: audit, out: c}
		for _, h := range c.Issue.Hashes {
			f.rows = append(f.rows, []any{c.Issue.UserID, h, created})
		}
		a.first = f
	}
	if u := d.UseRecovery; u != nil {
		a.recovery, a.use = []any{u.UserID, u.Hash}, u
		if len(d.Audit) > 0 {
			a.firstDetails = d.Audit[0].Details
		}
	}
	// A refund writes nothing: the reservation was only held (ledger).
	r := d.Refund
	if d.Settled != nil {
		r = d.Settled
		a.failed = d.Failed
	}
	if r != nil {
		a.ticket = &heldID{key: ledgerKey{r.UserID, r.Budget}, id: r.Reservation.ID}
	}
	if a.failed {
		until, err := unixOrZero("LockedUntil", r.Reservation.LockedUntil)
		if err != nil {
			return a, err
		}
		a.fail = []any{r.UserID, string(r.Budget), until}
	}
	return a, nil
}

// updateArgs are updateSQL's arguments for e (sameFactors:
// DecisionWrite.SameFactors).
func updateArgs(e *framework.Enrollment, sameFactors bool) ([]any, error) {
	if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
		return nil, fmt.Errorf("invalid status %q", e.Status)
	}
	updated, err := nanos("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return nil, err
	}
	var confirmed any // NULL for the zero time
	if !e.ConfirmedAt.IsZero() {
		if confirmed, err = nanos("ConfirmedAt", e.ConfirmedAt); err != nil {
			return nil, err
		}
	}
	return []any{string(e.Status), blob(e.State), updated, confirmed, e.UserID, e.Provider, e.Version, sameFactors}, nil
}

// countLeft counts the codes of d's user left after its use, into
// RecoveryUse.Left and its first audit entry's details.
func countLeft(tx *rawTx, d decisionArgs) error {
	left, err := tx.queryInt(countRecoverySQL, d.use.UserID)
	if err != nil {
		return err
	}
	d.use.Left = int(left)
	if len(d.audits) > 0 {
		js, err := auditdetails.WithRecoveryLeft(d.firstDetails, d.use.Left)
		if err != nil {
			return err
		}
		d.audits[0][len(d.audits[0])-1] = js
	}
	return nil
}

// auditArgs refuses an entry with text that is not UTF-8 or holds a NUL
// (CheckText), as the PostgreSQL store must: one rule for both stores.
func auditArgs(e framework.AuditEntry) ([]any, error) {
	if err := e.CheckText(); err != nil {
		return nil, err
	}
	at, err := nanos("Time", e.Time)
	if err != nil {
		return nil, err
	}
	d, err := auditdetails.Encode(e.Details)
	if err != nil {
		return nil, err
	}
	return []any{at, e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, d}, nil
}

// startDecisions prepares the decision statements on the writer
// connection, where its transactions find them (rawTx), so that a
// statement the schema cannot run fails the open, not a login; and starts
// the group commit.
func (s *Store) startDecisions(ctx context.Context) error {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		cn, ok := dc.(*conn)
		if !ok {
			return fmt.Errorf("writer connection is a %T", dc)
		}
		qs := append([]string{updateSQL, failSQL, useRecoverySQL, countRecoverySQL, hasRecoverySQL, insertRecoverySQL}, insertAudits.sqls[:]...)
		for _, q := range append(qs, resetUsers.sqls[:]...) {
			if _, err := cn.stmt(ctx, q); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.decisions = groupcommit.New(maxDecisionBatch, s.writeDecisions)
	return nil
}

// writeDecisions commits a batch in one transaction on the writer
// connection. A decision whose compare-and-swap finds a newer version, or
// whose recovery code is gone, writes nothing (ErrConflict for it alone)
// and keeps its reservation held; any other failure fails the batch, rolled back whole. The ledger
// entries of the batch's reservations stay locked until they are released
// after the commit (see ledger).
func (s *Store) writeDecisions(batch []decisionArgs) ([]error, error) {
	// The timeout bounds the wait for the writer connection; the
	// transaction runs without it (inTxDetached): busy_timeout ends its
	// lock waits first anyway, and a context that can be cancelled costs,
	// per statement, a goroutine the driver starts to watch it (modernc's
	// interruptOnDone), each start and end of which wakes another OS
	// thread.
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout+5*time.Second)
	defer cancel()
	type pinned struct {
		k ledgerKey
		e *ledgerEntry
	}
	var locked []pinned
	defer func() {
		for _, p := range locked {
			p.e.mu.Unlock()
			s.ledger.unpin(p.k, p.e)
		}
	}()
	resets := make([][]heldID, len(batch))
	for i, d := range batch {
		if d.ticket != nil && !slices.ContainsFunc(locked, func(p pinned) bool { return p.k == d.ticket.key }) {
			e := s.ledger.pin(d.ticket.key)
			e.mu.Lock()
			locked = append(locked, pinned{d.ticket.key, e})
		}
		if d.reset != "" {
			resets[i] = s.ledger.heldBy(d.reset)
		}
	}
	errs := make([]error, len(batch))
	var issued []*framework.FirstCodes // set once the batch committed
	err := s.inTxDetached(ctx, func(tx *rawTx) error {
		issued = issued[:0] // a retried transaction starts over
		// The audit entries and the users whose runs end, of the
		// decisions written, in order: written together (chunked), the
		// resets before the next failure counted, the rest after the
		// loop. Nothing else in a batch reads or writes either table.
		var audits, resets [][]any
		for i, d := range batch {
			if d.update != nil {
				if n, err := tx.exec(updateSQL, d.update...); err != nil {
					return err
				} else if n == 0 {
					errs[i] = framework.ErrConflict
					continue
				}
			}
			// Before anything else of the decision is written: a code
			// another decision used first fails this one alone.
			if d.recovery != nil {
				if n, err := tx.exec(useRecoverySQL, d.recovery...); err != nil {
					return err
				} else if n == 0 {
					errs[i] = framework.ErrConflict
					continue
				}
				if err := countLeft(tx, d); err != nil {
					return err
				}
			}
			audits = append(audits, d.audits...)
			if d.first != nil {
				if has, err := tx.queryInt(hasRecoverySQL, d.first.user); err != nil {
					return err
				} else if has == 0 {
					for _, row := range d.first.rows {
						if _, err := tx.exec(insertRecoverySQL, row...); err != nil {
							return err
						}
					}
					audits = append(audits, d.first.audit)
					issued = append(issued, d.first.out)
				}
			}
			if d.reset != "" {
				resets = append(resets, []any{d.reset})
			}
			// A reservation a reset ended meanwhile is not counted, as a
			// reset row would have lost it.
			if d.failed && s.ledger.holds(d.ticket.key, d.ticket.id) {
				if err := resetUsers.exec(tx, resets); err != nil {
					return err
				}
				resets = resets[:0]
				if _, err := tx.exec(failSQL, d.fail...); err != nil {
					return err
				}
			}
		}
		if err := resetUsers.exec(tx, resets); err != nil {
			return err
		}
		return insertAudits.exec(tx, audits)
	})
	if err == nil {
		for _, c := range issued {
			c.Issued = true
		}
	}
	if testHookCommitted != nil {
		testHookCommitted()
	}
	var done []heldID
	for i, d := range batch {
		if err == nil && errs[i] != nil {
			continue // nothing written; decided again with its reservation
		}
		if d.ticket != nil {
			done = append(done, *d.ticket)
		}
		if err == nil {
			done = append(done, resets[i]...)
		}
	}
	s.ledger.release(done...)
	return errs, err
}
