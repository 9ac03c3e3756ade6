package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/twofactor/twofactor/framework"
)

// SettlePush writes in one transaction on the single writer: no start's
// ReservePush, on the same writer, comes between the push's deletion and
// its answer's lockout.
func (s *Store) SettlePush(ctx context.Context, p framework.PushSettle) (framework.Attempts, error) {
	var update []any
	if p.Update != nil {
		var err error
		if update, err = updateArgs(p.Update, false); err != nil {
			return framework.Attempts{}, fmt.Errorf("sqlite: settle push: %w", err)
		}
	}
	var audits [][]any
	for _, e := range p.Audit {
		row, err := auditArgs(e)
		if err != nil {
			return framework.Attempts{}, fmt.Errorf("sqlite: settle push: %w", err)
		}
		audits = append(audits, row)
	}
	var a framework.Attempts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a = framework.Attempts{}
		if err := changedOne(tx.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, p.TxID)); err != nil {
			return err
		}
		if update != nil {
			if err := changedOne(tx.ExecContext(ctx, updateSQL, update...)); errors.Is(err, framework.ErrNotFound) {
				return framework.ErrConflict
			} else if err != nil {
				return err
			}
		}
		if p.Failure != nil {
			var err error
			if a, err = recordFailure(ctx, tx, *p.Failure); err != nil {
				return err
			}
		}
		for _, row := range audits {
			if _, err := tx.ExecContext(ctx, insertAudits.sqls[len(chunkSizes)-1], row...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: settle push: %w", err)
	}
	return a, nil
}

// changedOne is ErrNotFound for a statement that changed no row.
func changedOne(r sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return framework.ErrNotFound
	}
	return nil
}
