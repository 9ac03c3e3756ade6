package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/groupcommit"
)

var _ framework.DecisionStore = (*Store)(nil)

// decisionArgs is a DecisionWrite turned into statement arguments before
// it joins a batch, so a value the store cannot hold fails its own
// decision, not the batch.
type decisionArgs struct {
	update []any // nil when the state did not change
	user   string
	key    string // user and provider: the order updates lock rows in
	// lockUser is the user whose enrollments an update checked with
	// DecisionWrite.SameFactors locks first (lockUserSQL), or "".
	lockUser string
	audits   []auditRow
	reset    string
	refund   []any
	// recovery is the recovery code used up, or nil; recoveryKey (the
	// user's recovery lock, user and hash) the order its locks are taken
	// in; use is where its count of codes left goes, and firstDetails the
	// details of the first audit entry, which gets that count too.
	recovery     []any
	recoveryKey  string
	recoveryLock int32
	use          *framework.RecoveryUse
	firstDetails map[string]string
	// first are the first recovery codes an activation writes
	// (DecisionWrite.FirstCodes), or nil; recoveryKey and recoveryLock
	// are then the user's, whose lock it takes as a use does.
	first *firstCodesArgs
}

// firstCodesArgs is a FirstCodes as statement arguments, with the issue's
// audit entry and where Issued goes.
type firstCodesArgs struct {
	user    string
	hashes  [][]byte
	created time.Time
	audit   auditRow
	out     *framework.FirstCodes
}

const maxDecisionBatch = 256

// CommitDecision returns once d is committed: with the decisions of this
// replica that arrived while the previous commit was in progress, in one
// transaction (group commit: one WAL flush for all of them).
func (s *Store) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	a, err := decisionToArgs(d)
	if err != nil {
		return fmt.Errorf("postgres: commit decision: %w", err)
	}
	if err := s.decisions.Do(ctx, a); err != nil {
		return fmt.Errorf("postgres: commit decision: %w", err)
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
		a.key = e.UserID + "\x00" + e.Provider
		if d.SameFactors {
			a.lockUser = e.UserID
		}
	}
	for _, e := range d.Audit {
		row, err := auditRowOf(e)
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
		created, err := timestamp("Now", c.Issue.Now)
		if err != nil {
			return a, err
		}
		row, err := auditRowOf(c.Issue.Audit)
		if err != nil {
			return a, err
		}
		a.first = &firstCodesArgs{user: c.Issue.UserID, hashes: c.Issue.Hashes, created: created, audit: row, out: c}
		a.recoveryLock = recoveryLockOf(c.Issue.UserID)
		a.recoveryKey = fmt.Sprintf("%08x", uint32(a.recoveryLock)) + c.Issue.UserID + "\x00"
	}
	if u := d.UseRecovery; u != nil {
		a.recovery, a.use = []any{u.UserID, u.Hash}, u
		a.recoveryLock = recoveryLockOf(u.UserID)
		// Ordered by lock first: every batch takes the users' locks in
		// one order, whatever their names' hashes.
		a.recoveryKey = fmt.Sprintf("%08x", uint32(a.recoveryLock)) + u.UserID + "\x00" + string(u.Hash)
		if len(d.Audit) > 0 {
			a.firstDetails = d.Audit[0].Details
		}
	}
	if r := d.Refund; r != nil {
		set, err := nullTime("LockedUntil", r.Reservation.LockedUntil)
		if err != nil {
			return a, err
		}
		prev, err := nullTime("PrevLockedUntil", r.Reservation.PrevLockedUntil)
		if err != nil {
			return a, err
		}
		a.refund = []any{set, prev, r.UserID, string(r.Budget)}
		a.user = r.UserID
	}
	if a.reset != "" {
		a.user = a.reset
	}
	return a, nil
}

func (s *Store) startDecisions() {
	s.decisions = groupcommit.New(maxDecisionBatch, s.writeDecisions)
}

// writeDecisions commits a batch in one transaction, in three phases so
// that two replicas' batches can never wait on each other in a cycle:
// first the enrollment updates in (user, provider) order and the recovery
// codes used in (user, hash) order, then the attempt budgets in user
// order, and last the audit entries, under the advisory lock that keeps
// audit ids in commit order (see AppendAudit's history in audit.go).
// Every batch takes its locks in that one global order. A decision whose
// compare-and-swap finds a newer version, or whose recovery code is gone
// (deleted by a transaction that committed first), writes nothing
// (ErrConflict for it alone). A statement the server refuses for its
// data (SQLSTATE class 22: text it cannot hold, a value out of range)
// fails no one else's decision either: the batch, which the refusal
// rolled back whole, is written again one decision at a time
// (writeEach), and only the decisions the server refuses alone fail. Any
// other failure fails the batch.
//
// A batch is first sent as one pipeline (writePipelined): one round
// trip. Only when one of its compare-and-swaps fails, which rolls all of
// it back, is it written again by writeCareful, which finds which. A
// batch that uses a recovery code goes to writeCareful at once: the
// use's audit entry carries the count of codes left, which only the
// use's statement learns.
func (s *Store) writeDecisions(batch []decisionArgs) ([]error, error) {
	ctx, cancel := s.bounded(context.Background())
	defer cancel()
	errs, err := s.writeBatch(ctx, batch)
	if len(batch) > 1 && dataError(err) {
		return s.writeEach(ctx, batch), nil
	}
	return errs, err
}

// writeEach writes each decision of a batch the server refused for its
// data in a transaction of its own (the refusal rolled the whole batch
// back, so nothing of it is written twice), within the batch's one bound:
// a decision the server refuses alone gets that refusal, the others are
// written. Rare (every value is checked before it joins a batch, see
// decisionToArgs), so it is not worth a faster path.
func (s *Store) writeEach(ctx context.Context, batch []decisionArgs) []error {
	errs := make([]error, len(batch))
	for i := range batch {
		one, err := s.writeCareful(ctx, batch[i:i+1])
		switch {
		case err != nil:
			errs[i] = err
		case len(one) > 0:
			errs[i] = one[0]
		}
	}
	return errs
}

// dataError reports a statement the server refused for the data it was
// given (SQLSTATE class 22, data exception: 22021 text that is not valid
// UTF-8 or holds a NUL, 22P05 an escape text cannot hold, 22003 a number
// out of range, ...), which a transaction run again without that data
// would not meet. The pipeline's own division_by_zero (casSQL) is a lost
// compare-and-swap, not one.
func dataError(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && strings.HasPrefix(pe.Code, "22") && pe.Code != divisionByZero
}

// writeBatch is writeDecisions's one try at the whole batch.
func (s *Store) writeBatch(ctx context.Context, batch []decisionArgs) ([]error, error) {
	if slices.ContainsFunc(batch, func(d decisionArgs) bool { return d.recovery != nil || d.first != nil }) {
		return s.writeCareful(ctx, batch)
	}
	err := s.writePipelined(ctx, batch)
	if err == nil {
		return nil, nil
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != divisionByZero {
		if connectionLost(err) {
			// Not sent again: the batch may have committed before the
			// connection died, and a second run would report its own
			// compare-and-swaps as lost (a good code denied as a replay)
			// and write its audit entries and refunds twice. The batch
			// fails (503), and the pool, whose other connections likely
			// died with this one, is reset so the next batch connects
			// afresh.
			s.pool.Reset()
		}
		return nil, unavailable(err)
	}
	return s.writeCareful(ctx, batch)
}
