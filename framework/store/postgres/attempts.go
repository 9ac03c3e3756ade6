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

func (s *Store) Attempts(ctx context.Context, userID string, b framework.Budget) (framework.Attempts, error) {
	var (
		failures int
		until    *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT failures, locked_until FROM attempts WHERE user_id = $1 AND budget = $2`, userID, string(b)).Scan(&failures, &until)
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

// nullTime is t for a timestamptz column, NULL for the zero time.
func nullTime(field string, t time.Time) (*time.Time, error) {
	if t.IsZero() {
		return nil, nil
	}
	u, err := timestamp(field, t)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// lockAttempts makes sure the user's row of budget b exists and locks it
// until the transaction ends, returning what it holds. Every replica that
// checks or counts the same budget waits here for the one before it to
// commit, then reads what that one wrote. It is one statement: an upsert
// whose no-op update takes the row lock and returns the row, so a reset
// that deletes the row in between cannot leave it with nothing to lock
// (an insert, then a separate SELECT ... FOR UPDATE, could find nothing).
func lockAttempts(ctx context.Context, tx pgx.Tx, userID string, b framework.Budget) (framework.Attempts, error) {
	var (
		failures int
		until    *time.Time
	)
	err := tx.QueryRow(ctx, lockAttemptsSQL, userID, string(b)).Scan(&failures, &until)
	return attempts(failures, until), err
}

// Statements of a reservation.
const (
	// lockAttemptsSQL is lockAttempts' statement.
	lockAttemptsSQL = `
		INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES ($1, $2, 0, NULL)
		ON CONFLICT (user_id, budget) DO UPDATE SET failures = attempts.failures
		RETURNING failures, locked_until`
	countAttemptSQL = `UPDATE attempts SET failures = $1, locked_until = $2 WHERE user_id = $3 AND budget = $4`
)

// ReserveAttempt locks the budget's row (lockAttempts), checks it and
// counts the attempt, in one transaction sent as two round trips instead
// of five: BEGIN, the session setting and the lock go as one batch, the
// count and COMMIT as another (the count needs the row's value, and
// lockUntil is the framework's). A login pays this before anything else,
// and PostgreSQL shares the host's CPUs, so every round trip counts.
func (s *Store) ReserveAttempt(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	r, ok, sent, err := s.reserve(ctx, userID, b, now, lockUntil)
	if err != nil && !sent && ctx.Err() == nil && connectionLost(err) {
		// Nothing of it was committed: the connection died before COMMIT
		// was sent (a terminated backend), so run it once more on another.
		s.pool.Reset()
		r, ok, _, err = s.reserve(ctx, userID, b, now, lockUntil)
	}
	if err != nil {
		return framework.Reservation{}, false, fmt.Errorf("postgres: reserve attempt: %w", unavailable(err))
	}
	return r, ok, nil
}

// reserve is one try of ReserveAttempt; sent says COMMIT was sent, after
// which a failure may hide a commit.
func (s *Store) reserve(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (r framework.Reservation, ok, sent bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return r, false, false, err
	}
	// A connection left inside the transaction (an error below) is
	// destroyed by Release rather than reused.
	defer conn.Release()
	var (
		failures int
		until    *time.Time
	)
	first := &pgx.Batch{}
	first.Queue(`BEGIN`)
	// No wait for the WAL flush at commit: the reservation is visible to
	// every replica at once, which is what it must hold against; a server
	// crash may take back the last few, whose decisions were never
	// answered. It saves a flush per attempt; the decision's own commit is
	// durable (and flushes these with it).
	first.Queue(`SET LOCAL synchronous_commit = off`)
	first.Queue(lockAttemptsSQL, userID, string(b)).QueryRow(func(row pgx.Row) error { return row.Scan(&failures, &until) })
	if err := conn.SendBatch(ctx, first).Close(); err != nil {
		return r, false, false, err
	}
	cur := attempts(failures, until)
	second := &pgx.Batch{}
	if cur.LockedUntil.After(now) {
		r.Attempts = cur
	} else {
		next, err := nullTime("LockedUntil", lockUntil(cur.Failures+1))
		if err != nil {
			conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
			return r, false, false, err
		}
		second.Queue(countAttemptSQL, cur.Failures+1, next, userID, string(b))
		r, ok = framework.Reservation{Attempts: attempts(cur.Failures+1, next), PrevLockedUntil: cur.LockedUntil}, true
	}
	second.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, second).Close(); err != nil {
		return framework.Reservation{}, false, true, err
	}
	return r, ok, true, nil
}

// RecordFailure counts and locks in one transaction, on the locked row: a
// replica counting at the same moment waits and then counts from the
// committed number, so failures are never lost.
func (s *Store) RecordFailure(ctx context.Context, userID string, b framework.Budget, lockUntil func(int) time.Time) (framework.Attempts, error) {
	var a framework.Attempts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockAttempts(ctx, tx, userID, b)
		if err != nil {
			return err
		}
		a = framework.Attempts{Failures: cur.Failures + 1, LockedUntil: cur.LockedUntil}
		if next := lockUntil(a.Failures); next.After(a.LockedUntil) {
			a.LockedUntil = next
		}
		until, err := nullTime("LockedUntil", a.LockedUntil)
		if err != nil {
			return err
		}
		a = attempts(a.Failures, until)
		_, err = tx.Exec(ctx, `UPDATE attempts SET failures = $1, locked_until = $2 WHERE user_id = $3 AND budget = $4`,
			a.Failures, until, userID, string(b))
		return err
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("postgres: record failure: %w", err)
	}
	return a, nil
}

func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM attempts WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("postgres: reset attempts: %w", err)
	}
	return nil
}
