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

// ReserveAttempt reserves in one round trip (reserveFast), or, for a
// budget past the counts it was sent (a long run of failures) or a row a
// reset removed in between, in two (reserveLocked).
func (s *Store) ReserveAttempt(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	r, ok, _, err := s.reserveAttempt(ctx, userID, b, "", now, lockUntil)
	return r, ok, err
}

var _ framework.EnrollmentReserver = (*Store)(nil)

// ReserveAttemptFor is ReserveAttempt that reads the user's enrollment in
// provider in the same round trip: a login's reservation and read are one
// trip to the server instead of three.
func (s *Store) ReserveAttemptFor(ctx context.Context, userID string, b framework.Budget, provider string, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, *framework.Enrollment, error) {
	return s.reserveAttempt(ctx, userID, b, provider, now, lockUntil)
}

func (s *Store) reserveAttempt(ctx context.Context, userID string, b framework.Budget, provider string, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, *framework.Enrollment, error) {
	// Every login waits for its reservation: on a server that stopped
	// answering it ends within the bound, not the decision's deadline.
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	r, ok, e, err := s.reserveFast(ctx, userID, b, provider, now, lockUntil)
	if err == nil && !ok && r == (framework.Reservation{}) {
		// The fast path could not decide: take the row lock in its own
		// transaction and decide in Go.
		r, ok, err = s.reserveSlow(ctx, userID, b, now, lockUntil)
		if err == nil && ok && provider != "" {
			var got framework.Enrollment
			got, err = s.Get(ctx, userID, provider)
			switch {
			case err == nil:
				e = &got
			case errors.Is(err, framework.ErrNotFound):
				err = nil
			}
		}
	}
	if err != nil {
		return framework.Reservation{}, false, nil, fmt.Errorf("postgres: reserve attempt: %w", unavailable(err))
	}
	if !ok {
		e = nil
	}
	return r, ok, e, nil
}

// fastCounts is how many next counts the fast path is sent lockUntil of:
// a run longer than this is past the free attempts and backed off, rare
// enough to take the slow path.
const fastCounts = 8

// reserveSQL is the fast reservation: one statement, so one round trip
// and one (implicit) transaction. It
//
//   - turns off the wait for the WAL flush at commit, for this
//     transaction only (set_config with is_local true; see reserveSlow
//     for why the reservation may); cfg is read by ins so that it runs;
//   - inserts the budget's row already counted (failures 1, $4[1]) when
//     the user has none: ins returns the row as it was before, zero;
//   - otherwise locks the row (FOR UPDATE in cur: a replica reserving the
//     same budget waits here for the one before it to commit, then reads
//     what it wrote) and counts the attempt unless the budget is backed
//     off ($3 is now) or the run is past the counts $4 holds lockUntil of
//     ($4[n] is lockUntil(n), NULL for none). Under READ COMMITTED the
//     UPDATE, whose snapshot predates the wait, re-reads the row cur
//     locked (EvalPlanQual), so it counts from the committed value. The
//     row is not written when nothing is counted;
//   - returns the row as it was before, whether it counted, and the
//     user's enrollment in provider $5 (NULLs when there is none).
//
// No row comes back when the row was not there to lock: a reset deleted
// it after the statement's snapshot, or another reservation inserted it
// after (ins then waited for it and did nothing, and cur cannot see it).
// Nothing was counted then, and the caller takes the slow path.
const reserveSQL = `
	WITH cfg AS (` + asyncCommitSQL + `), ins AS (
		INSERT INTO attempts (user_id, budget, failures, locked_until)
		SELECT $1, $2, 1, ($4::timestamptz[])[1] FROM cfg
		ON CONFLICT (user_id, budget) DO NOTHING
		RETURNING 0 AS failures, NULL::timestamptz AS locked_until
	), cur AS (
		SELECT failures, locked_until FROM attempts
		WHERE user_id = $1 AND budget = $2 AND NOT EXISTS (SELECT FROM ins)
		FOR UPDATE
	), counted AS (
		UPDATE attempts a SET failures = cur.failures + 1, locked_until = ($4::timestamptz[])[cur.failures + 1]
		FROM cur
		WHERE a.user_id = $1 AND a.budget = $2
			AND NOT coalesce(cur.locked_until > $3, false) AND cur.failures < cardinality($4::timestamptz[])
		RETURNING 1
	)
	SELECT r.failures, r.locked_until, r.counted,
		e.status, e.state, e.version, e.created_at, e.updated_at, e.confirmed_at
	FROM (
		SELECT failures, locked_until, true AS counted FROM ins
		UNION ALL
		SELECT failures, locked_until, EXISTS (SELECT FROM counted) FROM cur
	) r
	LEFT JOIN enrollments e ON e.user_id = $1 AND e.provider = $5`

// asyncCommitSQL turns off the wait for the flush for the transaction
// it runs in (set_config's is_local), as SET LOCAL does: reserveSQL runs
// it in a CTE, reserveSlow as a statement, and the test of its scope
// alone.
const asyncCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`

// reserveFast is one try of the reservation in one round trip. When it
// cannot decide (see reserveSQL, or the run is past fastCounts) it
// changes nothing and returns the zero Reservation with ok false, which no
// decided call returns (a refusal carries the LockedUntil that refused
// it).
func (s *Store) reserveFast(ctx context.Context, userID string, b framework.Budget, provider string, now time.Time, lockUntil func(int) time.Time) (r framework.Reservation, ok bool, e *framework.Enrollment, err error) {
	until := make([]*time.Time, fastCounts)
	for i := range until {
		if until[i], err = nullTime("LockedUntil", lockUntil(i+1)); err != nil {
			return r, false, nil, err
		}
	}
	var (
		failures  int
		locked    *time.Time
		counted   bool
		status    *string
		enr       framework.Enrollment
		confirmed *time.Time
		version   *int64
		created   *time.Time
		updated   *time.Time
	)
	query := func() error {
		return s.pool.Pool.QueryRow(ctx, reserveSQL, userID, string(b), now.UTC(), until, provider).
			Scan(&failures, &locked, &counted, &status, &enr.State, &version, &created, &updated, &confirmed)
	}
	err = query()
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && ctx.Err() == nil && connectionLost(err) {
		// The connection died (a terminated backend: a failover, a
		// restart; the pool's other connections likely went with it, so
		// it is reset). Sent again on a new connection. If the statement
		// had run and committed before the connection died, this counts
		// the attempt a second time and the first is never settled: the
		// budget is then one attempt stricter, never looser, and only
		// when a connection dies under a reservation.
		s.pool.Reset()
		err = query()
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil, nil // no row to lock: undecided
	}
	if err != nil {
		return r, false, nil, err
	}
	if status != nil && provider != "" {
		enr.UserID, enr.Provider, enr.Status, enr.Version = userID, provider, framework.Status(*status), *version
		enr.CreatedAt, enr.UpdatedAt = created.UTC(), updated.UTC()
		if confirmed != nil {
			enr.ConfirmedAt = confirmed.UTC()
		}
		e = &enr
	}
	cur := attempts(failures, locked)
	switch {
	case counted && (cur.Failures < 0 || cur.Failures >= len(until)):
		// reserveSQL counts only below cardinality($4); anything else is
		// a server that did not run it as written.
		return r, false, nil, fmt.Errorf("counted a run of %d, past the %d counts sent", cur.Failures, len(until))
	case counted:
		i := cur.Failures // until[i] is lockUntil(cur.Failures+1)
		return framework.Reservation{Attempts: attempts(cur.Failures+1, until[i]), PrevLockedUntil: cur.LockedUntil}, true, e, nil
	case cur.LockedUntil.After(now):
		return framework.Reservation{Attempts: cur}, false, nil, nil
	default:
		return r, false, nil, nil // past fastCounts: undecided
	}
}

// reserveSlow locks the budget's row (lockAttempts), checks it and counts
// the attempt, in one transaction sent as two round trips: BEGIN, the
// session setting and the lock go as one batch, the count and COMMIT as
// another (the count needs the row's value, and lockUntil is the
// framework's).
func (s *Store) reserveSlow(ctx context.Context, userID string, b framework.Budget, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, error) {
	r, ok, sent, err := s.reserve(ctx, userID, b, now, lockUntil)
	if err != nil && !sent && ctx.Err() == nil && connectionLost(err) {
		// Nothing of it was committed: the connection died before COMMIT
		// was sent (a terminated backend), so run it once more on another.
		s.pool.Reset()
		r, ok, _, err = s.reserve(ctx, userID, b, now, lockUntil)
	}
	return r, ok, err
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
	first.Queue(asyncCommitSQL)
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
		var err error
		a, err = recordFailure(ctx, tx, framework.Failure{UserID: userID, Budget: b, LockUntil: lockUntil})
		return err
	})
	if err != nil {
		return framework.Attempts{}, fmt.Errorf("postgres: record failure: %w", err)
	}
	return a, nil
}

// recordFailure is RecordFailure in tx.
func recordFailure(ctx context.Context, tx pgx.Tx, f framework.Failure) (framework.Attempts, error) {
	cur, err := lockAttempts(ctx, tx, f.UserID, f.Budget)
	if err != nil {
		return framework.Attempts{}, err
	}
	a := framework.Attempts{Failures: cur.Failures + 1, LockedUntil: cur.LockedUntil}
	if next := f.LockUntil(a.Failures); next.After(a.LockedUntil) {
		a.LockedUntil = next
	}
	until, err := nullTime("LockedUntil", a.LockedUntil)
	if err != nil {
		return framework.Attempts{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE attempts SET failures = $1, locked_until = $2 WHERE user_id = $3 AND budget = $4`,
		a.Failures, until, f.UserID, string(f.Budget))
	return attempts(a.Failures, until), err
}

func (s *Store) ResetAttempts(ctx context.Context, userID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM attempts WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("postgres: reset attempts: %w", err)
	}
	return nil
}
