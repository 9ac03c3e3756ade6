package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/batch"
)

var (
	_ framework.SecretStore       = (*Store)(nil)
	_ framework.EnrollmentScanner = (*Store)(nil)
)

func (s *Store) LoadOrCreateSecret(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO host_secrets (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, sealed); err != nil {
		return nil, fmt.Errorf("sqlite: create host secret: %w", err)
	}
	var stored []byte
	// Read through the writer: a reader connection might not see the row
	// another process just inserted until its next transaction.
	if err := s.w.QueryRowContext(ctx, `SELECT sealed FROM host_secrets WHERE name = ?`, name).Scan(&stored); err != nil {
		return nil, fmt.Errorf("sqlite: load host secret: %w", err)
	}
	return stored, nil
}

func (s *Store) ReplaceSecret(ctx context.Context, name string, old, sealed []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE host_secrets SET sealed = ? WHERE name = ? AND sealed = ?`, sealed, name, old)
	if err != nil {
		return fmt.Errorf("sqlite: replace host secret: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: replace host secret: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: replace host secret: %w", framework.ErrConflict)
	}
	return nil
}

func (s *Store) ScanEnrollments(ctx context.Context, afterUser, afterProvider string, limit int) ([]framework.Enrollment, error) {
	return queryAll(ctx, s.r, "scan enrollments", scan, `SELECT `+readColumns+` FROM enrollments
		WHERE (user_id, provider) > (?, ?) ORDER BY user_id, provider LIMIT ?`, afterUser, afterProvider, limit)
}

// ResealEnrollments is Update's compare-and-swap, on state only (a
// re-seal keeps updated_at: the contract's), for every row of the batch in
// one BEGIN IMMEDIATE transaction on the writer connection: one commit
// (one fsync) for the whole batch instead of one a row.
func (s *Store) ResealEnrollments(ctx context.Context, b []framework.Enrollment) ([]bool, error) {
	if err := batch.Check(b); err != nil {
		return nil, fmt.Errorf("sqlite: reseal enrollments: %w", err)
	}
	return swapEach(ctx, s, "reseal enrollments", `UPDATE enrollments SET state = ?, version = version + 1
		WHERE user_id = ? AND provider = ? AND version = ?`, b,
		func(e framework.Enrollment) []any { return []any{blob(e.State), e.UserID, e.Provider, e.Version} })
}

// swapEach runs update, a compare-and-swap of one row, with args(item)
// for every item of b, in one transaction on the writer connection (one
// commit for the page), and says which items found their row as they
// expected it (one row changed). what names the write in its errors.
func swapEach[T any](ctx context.Context, s *Store, what, update string, b []T, args func(T) []any) ([]bool, error) {
	written := make([]bool, len(b))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, update)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, item := range b {
			res, err := st.ExecContext(ctx, args(item)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			written[i] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return written, nil
}
