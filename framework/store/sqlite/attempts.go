package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AttemptStore = (*Store)(nil)

func (s *Store) Attempts(ctx context.Context, userID string) (framework.Attempts, error) {
	var failures int
	var until int64
	err := s.r.QueryRowContext(ctx, `SELECT failures, locked_until FROM attempts WHERE user_id = ?`, userID).Scan(&failures, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return framework.Attempts{}, nil
	}
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: read attempts: %w", err)
	}
	return attempts(failures, until), nil
}

func attempts(failures int, until int64) framework.Attempts {
	a := framework.Attempts{Failures: failures}
	if until != 0 {
		a.LockedUntil = time.Unix(0, until).UTC()
	}
	return a
}

// RecordFailure counts and locks in one transaction on the single writer
// connection (BEGIN IMMEDIATE), so no other writer, in this process or
// another, can count in between.
func (s *Store) RecordFailure(ctx context.Context, userID string, lockUntil func(int) time.Time) (framework.Attempts, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	defer tx.Rollback()
	var failures int
	err = tx.QueryRowContext(ctx, `
		INSERT INTO attempts (user_id, failures, locked_until) VALUES (?, 1, 0)
		ON CONFLICT (user_id) DO UPDATE SET failures = attempts.failures + 1
		RETURNING failures`, userID).Scan(&failures)
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	var until int64
	if t := lockUntil(failures); !t.IsZero() {
		if until, err = nanos("LockedUntil", t); err != nil {
			return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE attempts SET locked_until = ? WHERE user_id = ?`, until, userID); err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	return attempts(failures, until), nil
}

func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM attempts WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlite: reset attempts: %w", err)
	}
	return nil
}
