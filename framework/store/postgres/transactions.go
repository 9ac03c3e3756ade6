package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
)

// foreignKeyViolation is SQLSTATE 23503.
const foreignKeyViolation = "23503"

// PutTransaction relies on the foreign key to enrollments: checking for the
// enrollment first and inserting after would let a Delete come between.
func (s *Store) PutTransaction(ctx context.Context, tx framework.Transaction) error {
	created, err := timestamp("CreatedAt", tx.CreatedAt)
	if err != nil {
		return fmt.Errorf("postgres: put transaction: %w", err)
	}
	expires, err := timestamp("ExpiresAt", tx.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: put transaction: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO transactions (id, user_id, provider, audience, provider_tx_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		tx.ID, tx.UserID, tx.Provider, string(tx.Audience), tx.ProviderTxID, created, expires)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == foreignKeyViolation {
		err = framework.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: put transaction: %w", err)
	}
	return nil
}

// GetTransaction matches the user as well as the id, so a transaction id
// learnt by another user finds nothing.
func (s *Store) GetTransaction(ctx context.Context, userID, id string) (framework.Transaction, error) {
	var (
		tx       framework.Transaction
		audience string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT id, user_id, provider, audience, provider_tx_id, created_at, expires_at
		FROM transactions WHERE id = $1 AND user_id = $2`, id, userID).
		Scan(&tx.ID, &tx.UserID, &tx.Provider, &audience, &tx.ProviderTxID, &tx.CreatedAt, &tx.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Transaction{}, fmt.Errorf("postgres: get transaction: %w", err)
	}
	tx.Audience = framework.Audience(audience)
	tx.CreatedAt, tx.ExpiresAt = tx.CreatedAt.UTC(), tx.ExpiresAt.UTC()
	return tx, nil
}

func (s *Store) DeleteTransaction(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete transaction: %w", err)
	}
	return nil
}
