package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AttemptStore = (*Store)(nil)

// Attempts is the stored budget plus the reservations this process holds
// (see ledger).
func (s *Store) Attempts(ctx context.Context, userID string, b framework.Budget) (framework.Attempts, error) {
	k := ledgerKey{userID, b}
	e := s.ledger.pin(k)
	defer s.ledger.unpin(k, e)
	e.mu.Lock() // not between a settlement's commit and its release
	defer e.mu.Unlock()
	a, err := s.storedAttempts(ctx, userID, b)
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: read attempts: %w", err)
	}
	return s.ledger.withHeld(ledgerKey{userID, b}, a), nil
}

func (s *Store) storedAttempts(ctx context.Context, userID string, b framework.Budget) (framework.Attempts, error) {
	var failures int
	var until int64
	err := s.r.QueryRowContext(ctx, attemptsSQL, userID, string(b)).Scan(&failures, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return framework.Attempts{}, nil
	}
	if err != nil {
		return framework.Attempts{}, err
	}
	return attempts(failures, until), nil
}

const attemptsSQL = `SELECT failures, locked_until FROM attempts WHERE user_id = ? AND budget = ?`

func attempts(failures int, until int64) framework.Attempts {
	a := framework.Attempts{Failures: failures}
	if until != 0 {
		a.LockedUntil = time.Unix(0, until).UTC()
	}
	return a
}

func unixOrZero(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	return nanos(field, t)
}

// ReserveAttempt checks the stored budget, with the reservations this
// process holds, and holds one more in memory (see ledger): no write. The
// entry's lock serialises the reservations of one budget, and keeps the
// read from racing the commit that settles one of them.
func (s *Store) ReserveAttempt(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	r, ok, err := s.reserve(ledgerKey{userID, b}, now, lockUntil, func() (framework.Attempts, error) {
		return s.storedAttempts(ctx, userID, b)
	})
	return r, ok, err
}

var _ framework.EnrollmentReserver = (*Store)(nil)

// ReserveAttemptFor is ReserveAttempt reading the user's enrollment in
// provider in the same statement as the budget: a login's two reads are
// one.
func (s *Store) ReserveAttemptFor(ctx context.Context, userID string, b framework.Budget, provider string, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, *framework.Enrollment, error) {
	var e *framework.Enrollment
	r, ok, err := s.reserve(ledgerKey{userID, b}, now, lockUntil, func() (framework.Attempts, error) {
		var a framework.Attempts
		var err error
		a, e, err = s.attemptsAndEnrollment(ctx, userID, b, provider)
		return a, err
	})
	if !ok {
		e = nil
	}
	return r, ok, e, err
}

func (s *Store) reserve(k ledgerKey, now time.Time, lockUntil func(int) time.Time, read func() (framework.Attempts, error)) (framework.Reservation, bool, error) {
	e := s.ledger.pin(k)
	defer s.ledger.unpin(k, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	stored, err := read()
	if err != nil {
		return framework.Reservation{}, false, fmt.Errorf("sqlite: reserve attempt: %w", err)
	}
	r, ok, err := s.ledger.reserve(k, e, stored, now, lockUntil)
	if err != nil {
		return framework.Reservation{}, false, fmt.Errorf("sqlite: reserve attempt: %w", err)
	}
	return r, ok, nil
}

// attemptsAndEnrollmentSQL always returns one row: the budget's columns
// NULL when it has no row, the enrollment's when there is none.
const attemptsAndEnrollmentSQL = `
	SELECT a.failures, a.locked_until, e.status, e.state, e.version, e.created_at, e.updated_at, e.confirmed_at
	FROM (SELECT 1) AS one
	LEFT JOIN attempts a ON a.user_id = ?1 AND a.budget = ?2
	LEFT JOIN enrollments e ON e.user_id = ?1 AND e.provider = ?3`

func (s *Store) attemptsAndEnrollment(ctx context.Context, userID string, b framework.Budget, provider string) (framework.Attempts, *framework.Enrollment, error) {
	// A request already given up reads nothing; one still wanted runs its
	// read without the deadline (rawQueryRow): given one, the driver
	// starts a goroutine per query to watch it, for a read of a few pages
	// that waits for no lock (WAL: readers never wait for the writer).
	// BenchmarkFirstUseLogins: the read's CPU 12.3 us a login with it,
	// 9.3 us without.
	if err := ctx.Err(); err != nil {
		return framework.Attempts{}, nil, err
	}
	args := []driver.NamedValue{{Ordinal: 1, Value: userID}, {Ordinal: 2, Value: string(b)}, {Ordinal: 3, Value: provider}}
	var row [8]driver.Value
	if err := rawQueryRow(ctx, s.r.DB, attemptsAndEnrollmentSQL, args, row[:]); err != nil {
		return framework.Attempts{}, nil, err
	}
	return gateRow(userID, provider, row)
}

// gateRow reads attemptsAndEnrollmentSQL's row: the budget (zero when
// NULL, no row), and the enrollment, nil when there is none.
func gateRow(userID, provider string, row [8]driver.Value) (framework.Attempts, *framework.Enrollment, error) {
	var ints [7]int64 // failures, locked_until, -, -, version, created_at, updated_at
	for _, i := range []int{0, 1, 4, 5, 6} {
		n, _, err := nullInt(row[i])
		if err != nil {
			return framework.Attempts{}, nil, fmt.Errorf("column %d: %w", i+1, err)
		}
		ints[i] = n
	}
	a := attempts(int(ints[0]), ints[1])
	status, ok, err := nullText(row[2])
	if err != nil {
		return framework.Attempts{}, nil, fmt.Errorf("status: %w", err)
	}
	if !ok {
		return a, nil, nil
	}
	state, err := blobValue(row[3])
	if err != nil {
		return framework.Attempts{}, nil, fmt.Errorf("state: %w", err)
	}
	confirmed, isConfirmed, err := nullInt(row[7])
	if err != nil {
		return framework.Attempts{}, nil, fmt.Errorf("confirmed_at: %w", err)
	}
	e := &framework.Enrollment{UserID: userID, Provider: provider, Status: framework.Status(status), State: state,
		Version: ints[4], CreatedAt: time.Unix(0, ints[5]).UTC(), UpdatedAt: time.Unix(0, ints[6]).UTC()}
	if isConfirmed {
		e.ConfirmedAt = time.Unix(0, confirmed).UTC()
	}
	return a, e, nil
}

// RecordFailure counts and locks in one transaction on the single writer
// connection, so no other writer can count in between.
func (s *Store) RecordFailure(ctx context.Context, userID string, b framework.Budget, lockUntil func(int) time.Time) (framework.Attempts, error) {
	var a framework.Attempts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = recordFailure(ctx, tx, framework.Failure{UserID: userID, Budget: b, LockUntil: lockUntil})
		return err
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	return a, nil
}

// recordFailure is RecordFailure in tx, a transaction on the writer.
func recordFailure(ctx context.Context, tx *sql.Tx, f framework.Failure) (framework.Attempts, error) {
	var failures int
	var until int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES (?, ?, 1, 0)
		ON CONFLICT (user_id, budget) DO UPDATE SET failures = attempts.failures + 1
		RETURNING failures, locked_until`, f.UserID, string(f.Budget)).Scan(&failures, &until)
	if err != nil {
		return framework.Attempts{}, err
	}
	next, err := unixOrZero("LockedUntil", f.LockUntil(failures))
	if err != nil {
		return framework.Attempts{}, err
	}
	until = max(until, next)
	if _, err := tx.ExecContext(ctx, `UPDATE attempts SET locked_until = ? WHERE user_id = ? AND budget = ?`, until, f.UserID, string(f.Budget)); err != nil {
		return framework.Attempts{}, err
	}
	return attempts(failures, until), nil
}

// ResetAttempts ends the user's runs: the stored budgets, and the
// reservations held when it started (their failures are then not
// counted, as a reset row would have lost them).
func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	held := s.ledger.heldBy(userID)
	if _, err := s.w.ExecContext(ctx, `DELETE FROM attempts WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlite: reset attempts: %w", err)
	}
	s.ledger.release(held...)
	return nil
}

// inTx runs fn in one transaction on the writer connection; its DSN makes
// BeginTx a BEGIN IMMEDIATE.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
