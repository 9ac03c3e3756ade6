package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/auditdetails"
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

const (
	// updateSQL's last argument is DecisionWrite.SameFactors: then no
	// other active factor of the user may be missing from the row's
	// factors (framework.FactorsStamp's ",name@µs," tokens). Its own
	// statement's snapshot sees every activation committed before it
	// starts; lockUserSQL, run first, makes any activation of the user's
	// still in flight commit before that (or wait for this one).
	updateSQL = `
		UPDATE enrollments SET status = $1, state = $2, version = version + 1, updated_at = $3, confirmed_at = $4
		WHERE user_id = $5 AND provider = $6 AND version = $7
		AND ($8::bool IS NOT TRUE OR NOT EXISTS (
			SELECT 1 FROM enrollments o
			WHERE o.user_id = $5 AND o.provider <> $6 AND o.status = 'active'
			AND (o.confirmed_at IS NULL OR strpos(enrollments.factors,
				',' || o.provider || '@' || (extract(epoch FROM o.confirmed_at) * 1000000)::bigint || ',') = 0)))`
	// lockUserSQL locks every enrollment of a user, in key order, until
	// commit: an activation on another replica, which updates its row,
	// then cannot come between the SameFactors check and the write. Its
	// key (user, "") orders it before the user's own updates (see order).
	lockUserSQL = `SELECT 1 FROM enrollments WHERE user_id = $1 ORDER BY provider FOR UPDATE`
	auditSQL    = `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	resetSQL = `DELETE FROM attempts WHERE user_id = $1`
	// useRecoverySQL uses a code up and counts the user's codes left:
	// the count is of the statement's snapshot (which sees this
	// transaction's earlier uses and every commit before the statement
	// began, not the CTE's own delete), less the code it deleted.
	useRecoverySQL = `
		WITH used AS (DELETE FROM recovery_codes WHERE user_id = $1 AND hash = $2 RETURNING 1)
		SELECT (SELECT count(*) FROM used)::int,
			((SELECT count(*) FROM recovery_codes WHERE user_id = $1) - (SELECT count(*) FROM used))::int`
	// recoveryLockSQL takes a user's recovery lock (see recovery.go)
	// until commit. It serialises the recovery code uses of one user
	// across replicas, so that each use's count sees every use committed
	// before it (without it, two replicas using two codes of one user at
	// once would each count the other's code as left), and the uses with
	// a replacement of the set. Two-key advisory locks are a key space
	// apart from auditLock's.
	recoveryLockSQL = `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`
	// insertFirstSQL writes an activation's first codes if the user has
	// none, under the user's recovery lock (taken first, as for a use):
	// of first factors activated at once, on any replicas, one set is
	// stored.
	insertFirstSQL = `
		INSERT INTO recovery_codes (user_id, hash, created_at)
		SELECT $1::text, h, $3::timestamptz FROM unnest($2::bytea[]) AS h
		WHERE NOT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = $1)`
	// auditLockSQL takes auditLock (see audit.go) until commit.
	auditLockSQL = `SELECT pg_advisory_xact_lock($1)`
	refundSQL    = `
		UPDATE attempts SET failures = GREATEST(failures - 1, 0),
			locked_until = CASE WHEN locked_until IS NOT DISTINCT FROM $1 THEN $2 ELSE locked_until END
		WHERE user_id = $3 AND budget = $4`
)

// auditRow is an audit entry's columns: at, then the text columns in
// auditSQL's order (details last).
type auditRow struct {
	at   time.Time
	text [9]string
}

// auditRowOf refuses an entry whose text the server would refuse
// (CheckText): the refusal is then its decision's, before it joins a
// batch, not the batch's.
func auditRowOf(e framework.AuditEntry) (auditRow, error) {
	if err := e.CheckText(); err != nil {
		return auditRow{}, err
	}
	at, err := timestamp("Time", e.Time)
	if err != nil {
		return auditRow{}, err
	}
	js, err := auditdetails.Encode(e.Details)
	if err != nil {
		return auditRow{}, err
	}
	return auditRow{at: at, text: [9]string{e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, js}}, nil
}

func (r auditRow) args() []any {
	out := []any{r.at}
	for _, t := range r.text {
		out = append(out, t)
	}
	return out
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

// divisionByZero is SQLSTATE 22012: what a compare-and-swap of the
// pipeline that wrote nothing raises (see casSQL).
const divisionByZero = "22012"

// Statements of the pipelined write.
const (
	// casSQL is updateSQL failing when it updated nothing: 1/0 raises
	// division_by_zero, which aborts the pipeline's implicit transaction,
	// so nothing of the batch is written when a compare-and-swap loses.
	// (Plain SQL has no RAISE, and a function would be a schema change
	// the SQLite store's numbering has no room for.)
	casSQL = `WITH u AS (` + updateSQL + ` RETURNING 1) SELECT 1 / count(*)::int FROM u`
	// auditRowsSQL inserts the batch's audit entries in one statement,
	// one array per column, in the batch's order.
	auditRowsSQL = `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`
)

// auditColumns are auditRowsSQL's arguments for rows: one array a column.
func auditColumns(rows []auditRow) []any {
	at := make([]time.Time, len(rows))
	var text [9][]string
	for i, row := range rows {
		at[i] = row.at
		for c, v := range row.text {
			text[c] = append(text[c], v)
		}
	}
	args := []any{at}
	for _, col := range text {
		args = append(args, col)
	}
	return args
}

// order returns the indexes of the batch's items with a key, sorted by it.
func order(batch []decisionArgs, key func(decisionArgs) string) []int {
	idx := make([]int, 0, len(batch))
	for i, d := range batch {
		if key(d) != "" {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(key(batch[a]), key(batch[b])) })
	return idx
}

// writePipelined sends the whole batch, which uses no recovery code, as
// one pgx.Batch without BEGIN: pgx sends it as one pipeline ending in one
// Sync, which the server runs as one implicit transaction, committed
// (durably: open forces synchronous_commit on for the store's sessions)
// before the Sync is answered, and
// rolled back whole if any statement fails. The statements and their lock
// order are writeCareful's; a compare-and-swap that finds a newer version
// fails the statement (casSQL), and with it the pipeline.
func (s *Store) writePipelined(ctx context.Context, batch []decisionArgs) error {
	b := &pgx.Batch{}
	for _, st := range updateSteps(batch) {
		if st.lock {
			b.Queue(lockUserSQL, batch[st.i].lockUser)
			continue
		}
		b.Queue(casSQL, batch[st.i].update...)
	}
	for _, i := range order(batch, func(d decisionArgs) string { return d.user }) {
		if batch[i].reset != "" {
			b.Queue(resetSQL, batch[i].reset)
		}
		if batch[i].refund != nil {
			b.Queue(refundSQL, batch[i].refund...)
		}
	}
	var audits []auditRow
	for _, d := range batch {
		audits = append(audits, d.audits...)
	}
	if len(audits) > 0 {
		b.Queue(auditLockSQL, auditLock)
		b.Queue(auditRowsSQL, auditColumns(audits)...)
	}
	if b.Len() == 0 {
		return nil
	}
	return s.pool.Pool.SendBatch(ctx, b).Close()
}

// writeCareful is writeDecisions in an explicit transaction, each phase
// one round trip, reading each compare-and-swap's result: a decision whose
// compare-and-swap lost gets ErrConflict and nothing of it is written.
func (s *Store) writeCareful(ctx context.Context, batch []decisionArgs) ([]error, error) {
	errs := make([]error, len(batch))
	var issued []int // the decisions whose first codes were written
	order := func(key func(decisionArgs) string) []int { return order(batch, key) }
	// Each phase is one pgx.Batch: one round trip for all its statements.
	run := func(tx pgx.Tx, b *pgx.Batch, each func(i int, tag pgconnTag) error) error {
		if b.Len() == 0 {
			return nil
		}
		br := tx.SendBatch(ctx, b)
		for i := range b.Len() {
			tag, err := br.Exec()
			if err == nil && each != nil {
				err = each(i, tag)
			}
			if err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A decision has an update or a recovery code, never both
		// (DecisionWrite.CheckRecoveryUse): each is its one compare-and-swap.
		b := &pgx.Batch{}
		var reads []func(pgx.BatchResults) error
		for _, st := range updateSteps(batch) {
			i := st.i
			if st.lock {
				b.Queue(lockUserSQL, batch[i].lockUser)
				reads = append(reads, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
				continue
			}
			b.Queue(updateSQL, batch[i].update...)
			reads = append(reads, func(br pgx.BatchResults) error {
				tag, err := br.Exec()
				if err == nil && tag.RowsAffected() == 0 {
					errs[i] = framework.ErrConflict
				}
				return err
			})
		}
		lockedUsers := map[int32]bool{}
		for _, i := range order(func(d decisionArgs) string { return d.recoveryKey }) {
			d := batch[i]
			if !lockedUsers[d.recoveryLock] {
				lockedUsers[d.recoveryLock] = true
				b.Queue(recoveryLockSQL, recoveryLock, d.recoveryLock)
				reads = append(reads, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
			}
			if d.recovery == nil {
				continue // first codes: the lock now, the codes once the activation is known
			}
			b.Queue(useRecoverySQL, d.recovery...)
			reads = append(reads, func(br pgx.BatchResults) error {
				var used int
				if err := br.QueryRow().Scan(&used, &d.use.Left); err != nil {
					return err
				}
				if used == 0 {
					errs[i] = framework.ErrConflict
					return nil
				}
				if len(d.audits) > 0 {
					js, err := auditdetails.WithRecoveryLeft(d.firstDetails, d.use.Left)
					if err != nil {
						return err
					}
					d.audits[0].text[len(d.audits[0].text)-1] = js
				}
				return nil
			})
		}
		if b.Len() > 0 {
			br := tx.SendBatch(ctx, b)
			for _, read := range reads {
				if err := read(br); err != nil {
					br.Close()
					return err
				}
			}
			if err := br.Close(); err != nil {
				return err
			}
		}
		// The first codes of the activations that won their
		// compare-and-swap, each if its user has none.
		b = &pgx.Batch{}
		var firsts []int
		for i, d := range batch {
			if d.first != nil && errs[i] == nil {
				b.Queue(insertFirstSQL, d.first.user, d.first.hashes, d.first.created)
				firsts = append(firsts, i)
			}
		}
		issued = issued[:0]
		if err := run(tx, b, func(n int, tag pgconnTag) error {
			if tag.RowsAffected() > 0 {
				issued = append(issued, firsts[n])
			}
			return nil
		}); err != nil {
			return err
		}
		b = &pgx.Batch{}
		for _, i := range order(func(d decisionArgs) string { return d.user }) {
			if errs[i] != nil {
				continue
			}
			if batch[i].reset != "" {
				b.Queue(resetSQL, batch[i].reset)
			}
			if batch[i].refund != nil {
				b.Queue(refundSQL, batch[i].refund...)
			}
		}
		locked := false
		for i, d := range batch {
			first := slices.Contains(issued, i) // its codes' entry, with or without others
			if errs[i] != nil || (len(d.audits) == 0 && !first) {
				continue
			}
			if !locked {
				b.Queue(auditLockSQL, auditLock)
				locked = true
			}
			for _, row := range d.audits {
				b.Queue(auditSQL, row.args()...)
			}
			if first {
				b.Queue(auditSQL, d.first.audit.args()...)
			}
		}
		return run(tx, b, nil)
	})
	if err == nil {
		for _, i := range issued {
			batch[i].first.out.Issued = true
		}
	}
	return errs, unavailable(err)
}

type pgconnTag = pgconn.CommandTag
