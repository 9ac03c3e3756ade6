package postgres

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/auditdetails"
)

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
