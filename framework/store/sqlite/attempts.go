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

func (s *Store) Attempts(ctx context.Context, userID string, b framework.Budget) (framework.Attempts, error) {
	var failures int
	var until int64
	err := s.r.QueryRowContext(ctx, `SELECT failures, locked_until FROM attempts WHERE user_id = ? AND budget = ?`, userID, string(b)).Scan(&failures, &until)
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

func unixOrZero(field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	return nanos(field, t)
}

// Statements of the gate, prepared once on the writer connection.
const (
	reserveReadSQL   = `SELECT failures, locked_until FROM attempts WHERE user_id = ? AND budget = ?`
	reserveUpsertSQL = `
		INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, budget) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`
)

// ReserveAttempt checks and counts in one transaction on the single writer
// connection (BEGIN IMMEDIATE: the write lock is taken before the read), so
// no other writer, in this process or another, can check in between. It
// commits without an fsync (inCheapTx): see there why that is enough.
func (s *Store) ReserveAttempt(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	var (
		r  framework.Reservation
		ok bool
	)
	err := s.inCheapTx(ctx, func(tx *sql.Tx) error {
		var failures int
		var until int64
		read, err := s.txStmt(ctx, tx, reserveReadSQL)
		if err != nil {
			return err
		}
		err = read.QueryRowContext(ctx, userID, string(b)).Scan(&failures, &until)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		cur := attempts(failures, until)
		if cur.LockedUntil.After(now) {
			r.Attempts = cur
			return nil
		}
		next, err := unixOrZero("LockedUntil", lockUntil(failures+1))
		if err != nil {
			return err
		}
		upsert, err := s.txStmt(ctx, tx, reserveUpsertSQL)
		if err != nil {
			return err
		}
		if _, err = upsert.ExecContext(ctx, userID, string(b), failures+1, next); err != nil {
			return err
		}
		r = framework.Reservation{Attempts: attempts(failures+1, next), PrevLockedUntil: cur.LockedUntil}
		ok = true
		return nil
	})
	if err != nil {
		return framework.Reservation{}, false, fmt.Errorf("sqlite: reserve attempt: %w", err)
	}
	return r, ok, nil
}

// RecordFailure counts and locks in one transaction on the single writer
// connection, so no other writer can count in between.
func (s *Store) RecordFailure(ctx context.Context, userID string, b framework.Budget, lockUntil func(int) time.Time) (framework.Attempts, error) {
	var a framework.Attempts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var failures int
		var until int64
		err := tx.QueryRowContext(ctx, `
			INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES (?, ?, 1, 0)
			ON CONFLICT (user_id, budget) DO UPDATE SET failures = attempts.failures + 1
			RETURNING failures, locked_until`, userID, string(b)).Scan(&failures, &until)
		if err != nil {
			return err
		}
		next, err := unixOrZero("LockedUntil", lockUntil(failures))
		if err != nil {
			return err
		}
		until = max(until, next)
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET locked_until = ? WHERE user_id = ? AND budget = ?`, until, userID, string(b)); err != nil {
			return err
		}
		a = attempts(failures, until)
		return nil
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("sqlite: record failure: %w", err)
	}
	return a, nil
}

func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM attempts WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlite: reset attempts: %w", err)
	}
	return nil
}

// inCheapTx is inTx committed with synchronous=NORMAL: the commit is
// atomic and at once visible to every connection and process (it is in the
// WAL), and it survives a crash of this process, but it is not fsynced: an
// OS crash or power loss may take back the last such commits, until the
// next durable commit syncs the WAL (every decision's does, within
// milliseconds). It is for the gate's reservations: what a reservation
// must hold against is a concurrent request, and an attempt whose
// reservation a power loss took back also lost its decision, which was
// never answered. It saves an fsync per attempt.
func (s *Store) inCheapTx(ctx context.Context, fn func(*sql.Tx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	defer func() {
		// Every other write on this connection must stay durable: if
		// synchronous cannot be put back, the connection is thrown away
		// (a new one runs the DSN's synchronous(FULL)).
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// txStmt is query's statement for tx: the one prepared on the writer
// connection when cached (prepareWriter), else prepared in tx.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st := s.w.cached(query); st != nil {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
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
