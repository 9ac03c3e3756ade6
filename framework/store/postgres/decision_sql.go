package postgres

// The statements that write a decision batch (decision.go,
// decision_batch.go).

const (
	// updateSQL's last argument is DecisionWrite.SameFactors: then no
	// other active factor of the user may be missing from the row's
	// factors (framework.FactorsStamp's ",name@µs," tokens). Its own
	// statement's snapshot sees every activation committed before it
	// starts; lockUserSQL, run first, makes any activation of the user's
	// still in flight commit before that (or wait for this one).
	updateSQL = `
		UPDATE enrollments SET status = $1, state = $2, version = version + 1, updated_at = $3, confirmed_at = $4
		WHERE user_id = $5 AND provider = $6 AND version = $7
		AND ($8::bool IS NOT TRUE OR NOT EXISTS (
			SELECT 1 FROM enrollments o
			WHERE o.user_id = $5 AND o.provider <> $6 AND o.status = 'active'
			AND (o.confirmed_at IS NULL OR strpos(enrollments.factors,
				',' || o.provider || '@' || (extract(epoch FROM o.confirmed_at) * 1000000)::bigint || ',') = 0)))`
	// lockUserSQL locks every enrollment of a user, in key order, until
	// commit: an activation on another replica, which updates its row,
	// then cannot come between the SameFactors check and the write. Its
	// key (user, "") orders it before the user's own updates (see order).
	lockUserSQL = `SELECT 1 FROM enrollments WHERE user_id = $1 ORDER BY provider FOR UPDATE`
	auditSQL    = `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	resetSQL = `DELETE FROM attempts WHERE user_id = $1`
	// useRecoverySQL uses a code up and counts the user's codes left:
	// the count is of the statement's snapshot (which sees this
	// transaction's earlier uses and every commit before the statement
	// began, not the CTE's own delete), less the code it deleted.
	useRecoverySQL = `
		WITH used AS (DELETE FROM recovery_codes WHERE user_id = $1 AND hash = $2 RETURNING 1)
		SELECT (SELECT count(*) FROM used)::int,
			((SELECT count(*) FROM recovery_codes WHERE user_id = $1) - (SELECT count(*) FROM used))::int`
	// recoveryLockSQL takes a user's recovery lock (see recovery.go)
	// until commit. It serialises the recovery code uses of one user
	// across replicas, so that each use's count sees every use committed
	// before it (without it, two replicas using two codes of one user at
	// once would each count the other's code as left), and the uses with
	// a replacement of the set. Two-key advisory locks are a key space
	// apart from auditLock's.
	recoveryLockSQL = `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`
	// insertFirstSQL writes an activation's first codes if the user has
	// none, under the user's recovery lock (taken first, as for a use):
	// of first factors activated at once, on any replicas, one set is
	// stored.
	insertFirstSQL = `
		INSERT INTO recovery_codes (user_id, hash, created_at)
		SELECT $1::text, h, $3::timestamptz FROM unnest($2::bytea[]) AS h
		WHERE NOT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = $1)`
	// auditLockSQL takes auditLock (see audit.go) until commit.
	auditLockSQL = `SELECT pg_advisory_xact_lock($1)`
	refundSQL    = `
		UPDATE attempts SET failures = GREATEST(failures - 1, 0),
			locked_until = CASE WHEN locked_until IS NOT DISTINCT FROM $1 THEN $2 ELSE locked_until END
		WHERE user_id = $3 AND budget = $4`
)

// divisionByZero is SQLSTATE 22012: what a compare-and-swap of the
// pipeline that wrote nothing raises (see casSQL).
const divisionByZero = "22012"

// Statements of the pipelined write.
const (
	// casSQL is updateSQL failing when it updated nothing: 1/0 raises
	// division_by_zero, which aborts the pipeline's implicit transaction,
	// so nothing of the batch is written when a compare-and-swap loses.
	// (Plain SQL has no RAISE, and a function would be a schema change
	// the SQLite store's numbering has no room for.)
	casSQL = `WITH u AS (` + updateSQL + ` RETURNING 1) SELECT 1 / count(*)::int FROM u`
	// auditRowsSQL inserts the batch's audit entries in one statement,
	// one array per column, in the batch's order.
	auditRowsSQL = `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`
)
