package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
	sqlite3 "modernc.org/sqlite/lib"

	sqlitedriver "modernc.org/sqlite"
)

func (s *Store) PutTransaction(ctx context.Context, tx framework.Transaction) error {
	created, err := nanos("CreatedAt", tx.CreatedAt)
	if err != nil {
		return fmt.Errorf("sqlite: put transaction: %w", err)
	}
	expires, err := nanos("ExpiresAt", tx.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sqlite: put transaction: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `
		INSERT INTO transactions (id, user_id, provider, audience, provider_tx_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		tx.ID, tx.UserID, tx.Provider, string(tx.Audience), tx.ProviderTxID, created, expires)
	var se *sqlitedriver.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		err = framework.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: put transaction: %w", err)
	}
	return nil
}

func (s *Store) GetTransaction(ctx context.Context, userID, id string) (framework.Transaction, error) {
	var (
		tx               framework.Transaction
		audience         string
		created, expires int64
	)
	err := s.r.QueryRowContext(ctx, `
		SELECT id, user_id, provider, audience, provider_tx_id, created_at, expires_at
		FROM transactions WHERE id = ? AND user_id = ?`, id, userID).
		Scan(&tx.ID, &tx.UserID, &tx.Provider, &audience, &tx.ProviderTxID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Transaction{}, fmt.Errorf("sqlite: get transaction: %w", err)
	}
	tx.Audience = framework.Audience(audience)
	tx.CreatedAt, tx.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return tx, nil
}

func (s *Store) DeleteTransaction(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete transaction: %w", err)
	}
	return nil
}
