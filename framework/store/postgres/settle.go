package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

// SettlePush writes in one transaction, taking its locks in the order of
// a reset (the enrollment, then its transactions) and of a decision (the
// enrollment, the attempts, the audit lock), so that none of them waits
// on it in a cycle. A ReservePush of the user, on any replica, either
// read the push before this commits (and reserves nothing: Unsettled) or
// reads after it, when the lockout is committed too.
func (s *Store) SettlePush(ctx context.Context, p framework.PushSettle) (framework.Attempts, error) {
	var update []any
	if p.Update != nil {
		var err error
		if update, err = updateArgs(p.Update, false); err != nil {
			return framework.Attempts{}, fmt.Errorf("postgres: settle push: %w", err)
		}
	}
	var audits []auditRow
	for _, e := range p.Audit {
		row, err := auditRowOf(e)
		if err != nil {
			return framework.Attempts{}, fmt.Errorf("postgres: settle push: %w", err)
		}
		audits = append(audits, row)
	}
	var a framework.Attempts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a = framework.Attempts{}
		if update != nil {
			if tag, err := tx.Exec(ctx, updateSQL, update...); err != nil {
				return err
			} else if tag.RowsAffected() == 0 {
				return framework.ErrConflict
			}
		}
		if tag, err := tx.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, p.TxID); err != nil {
			return err
		} else if tag.RowsAffected() == 0 {
			return framework.ErrNotFound
		}
		if p.Failure != nil {
			var err error
			if a, err = recordFailure(ctx, tx, *p.Failure); err != nil {
				return err
			}
		}
		if len(audits) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, auditLockSQL, auditLock); err != nil {
			return err
		}
		for _, row := range audits {
			if _, err := tx.Exec(ctx, auditSQL, row.args()...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("postgres: settle push: %w", unavailable(err))
	}
	return a, nil
}

// updateArgs are updateSQL's arguments for e (sameFactors:
// DecisionWrite.SameFactors).
func updateArgs(e *framework.Enrollment, sameFactors bool) ([]any, error) {
	if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
		return nil, fmt.Errorf("invalid status %q", e.Status)
	}
	updated, err := timestamp("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return nil, err
	}
	confirmed, err := nullTime("ConfirmedAt", e.ConfirmedAt)
	if err != nil {
		return nil, err
	}
	return []any{string(e.Status), blob(e.State), updated, confirmed, e.UserID, e.Provider, e.Version, sameFactors}, nil
}
