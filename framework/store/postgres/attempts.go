package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AttemptStore = (*Store)(nil)

func (s *Store) Attempts(ctx context.Context, userID string) (framework.Attempts, error) {
	var (
		failures int
		until    *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT failures, locked_until FROM attempts WHERE user_id = $1`, userID).Scan(&failures, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return framework.Attempts{}, nil
	}
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("postgres: read attempts: %w", err)
	}
	return attempts(failures, until), nil
}

func attempts(failures int, until *time.Time) framework.Attempts {
	a := framework.Attempts{Failures: failures}
	if until != nil {
		a.LockedUntil = until.UTC()
	}
	return a
}

// RecordFailure counts and locks in one transaction. The upsert leaves the
// user's row locked until commit, so a replica counting at the same moment
// waits at its own upsert and then counts from the committed number:
// failures are never lost, and the lock time written always belongs to the
// count it was computed from.
func (s *Store) RecordFailure(ctx context.Context, userID string, lockUntil func(int) time.Time) (framework.Attempts, error) {
	var (
		failures int
		until    *time.Time
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO attempts (user_id, failures, locked_until) VALUES ($1, 1, NULL)
			ON CONFLICT (user_id) DO UPDATE SET failures = attempts.failures + 1
			RETURNING failures`, userID).Scan(&failures)
		if err != nil {
			return err
		}
		if t := lockUntil(failures); !t.IsZero() {
			u, err := timestamp("LockedUntil", t)
			if err != nil {
				return err
			}
			until = &u
		}
		_, err = tx.Exec(ctx, `UPDATE attempts SET locked_until = $1 WHERE user_id = $2`, until, userID)
		return err
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("postgres: record failure: %w", err)
	}
	return attempts(failures, until), nil
}

func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM attempts WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("postgres: reset attempts: %w", err)
	}
	return nil
}
