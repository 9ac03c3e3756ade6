package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twofactor/twofactor/framework"
)

// faultPool is the store's pgxpool.Pool with two duties added on every
// statement, so that no method of the store has to remember them:
//
//   - A failure of the database itself (see unavailable) is wrapped in
//     framework.StoreUnavailable, which the framework answers as 503
//     store_unavailable instead of 500 internal.
//   - A statement that met a dead connection (a backend terminated by
//     pg_terminate_backend, a failover, a PgBouncer restart) is run once
//     more on another connection when that is safe (see retryable).
type faultPool struct {
	*pgxpool.Pool
}

// Statement bounds: lock_timeout a session default unless the DSN sets
// it, statement_timeout unless the DSN or the server does (sessionTimeout).
// lock_timeout: a request waiting on a lock another session holds (a
// backup's LOCK TABLE, a stuck transaction) gives up after this and
// answers 503, rather than every request stalling for the whole lock.
// statement_timeout: no statement of this store takes more than a few
// milliseconds; one that runs this long is stuck, and the request should
// end. Migrations lift both (they may wait for another replica's).
const (
	lockTimeout      = 2 * time.Second
	statementTimeout = 10 * time.Second
)

// answerMargin is how much longer than the session's statement_timeout
// the store waits for the server's answer to a decision batch or a
// reservation before it gives up on the connection: long enough for the
// server's own timeout to be reported first (the connection then stays
// usable). A server that answers nothing at all (hung, its disk stalled,
// the network cut without a reset) fails the call then.
const answerMargin = 5 * time.Second

// serverWait is the bound on a call's wait for the server (see
// Store.bounded): the session's statement_timeout in milliseconds, as
// the server reported it (sessionTimeout), plus answerMargin. A timeout
// of 0 (none on the server: the DSN asked for none) gives
// statementTimeout's bound: the client's wait is never unbounded.
func serverWait(ms int64) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d == 0 {
		d = statementTimeout
	}
	return d + answerMargin
}

// timeoutSQL reads the statement_timeout a new session gets, in
// milliseconds, and where it comes from: "client" when the DSN set it
// (as statement_timeout=, or as options=-c statement_timeout=), "user" or
// "database" for ALTER ROLE or ALTER DATABASE, "configuration file",
// "default" when nothing did. Qualified, so that a search_path naming a
// schema before pg_catalog cannot put another pg_settings in its place.
const timeoutSQL = `SELECT setting::bigint, source FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'`

// sessionTimeout connects once with cfg and asks the server which
// statement_timeout (milliseconds) the store's sessions are to run with:
// the one the server gives this role in this database, whoever set it
// (the DSN, ALTER ROLE or ALTER DATABASE ... SET, postgresql.conf), so
// that the store's bound is the server's and not a guess from the DSN.
// Where nothing set one (source "default"), or the server's side set
// none or a longer one, the store's own statementTimeout, as before: a
// login waits at most that for a hung server (then 503) unless the
// store's own DSN asks for longer or for none; a role's timeout meant for
// long reports or migrations does not hold logins up for minutes, and a
// shorter one is kept (the DBA's bound on this role). A value that cannot be read
// fails the open: a guess could be shorter than what the server applies,
// and the client would then give up on statements the server still runs.
//
// It is read once, at open, and open sends it to the server as every
// pool connection's statement_timeout start-up parameter. That makes it
// the value of every connection, whatever changes after the open: a
// start-up parameter is a client setting, which outranks ALTER ROLE,
// ALTER DATABASE and the configuration file (also when that is
// reloaded), and is applied after the DSN's options=-c; a multi-host DSN
// reaching another server sends it too. The one thing that could change a
// session's value is a SET in that session, and the store's only one is
// migrate's SET LOCAL, undone when its transaction ends. Reading it on
// every new connection would add a round trip to each for nothing.
func sessionTimeout(ctx context.Context, cfg *pgx.ConnConfig) (int64, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var (
		ms     int64
		source string
	)
	if err := conn.QueryRow(ctx, timeoutSQL).Scan(&ms, &source); err != nil {
		return 0, fmt.Errorf("%w: %w", errTimeoutUnread, err)
	}
	if own := statementTimeout.Milliseconds(); source != "client" && (ms == 0 || ms > own) {
		ms = own
	}
	return ms, nil
}

// errTimeoutUnread is the error of a server whose statement_timeout
// cannot be read: the store then does not open (fail closed).
var errTimeoutUnread = errors.New("cannot read the server's statement_timeout, which bounds the store's wait for the server")

// configure sets the lock bound and the pool's liveness checks. The
// statement bound is the server's (see sessionTimeout).
func configure(cfg *pgxpool.Config) {
	params := cfg.ConnConfig.RuntimeParams
	if params["lock_timeout"] == "" {
		params["lock_timeout"] = strconv.FormatInt(lockTimeout.Milliseconds(), 10)
	}
	// pgxpool pings a connection idle for over a second before handing it
	// out (its default ShouldPing), which finds most connections a server
	// terminated while the pool was quiet; the ping gets a deadline so a
	// half-open connection cannot stall the request. The health check
	// sweeps idle connections more often than its one-minute default.
	cfg.PingTimeout = 2 * time.Second
	cfg.HealthCheckPeriod = 5 * time.Second
}

// unavailable returns err wrapped in framework.StoreUnavailable when the
// database failed rather than the statement: no connection, a connection
// lost or terminated, the server shutting down or out of resources, a
// lock or statement timeout, a read-only server (a standby after a
// failover), an I/O or corruption error. Constraint violations and other
// statement errors pass through.
func unavailable(err error) error {
	if err == nil || errors.Is(err, framework.ErrStoreUnavailable) {
		return err
	}
	if connectionLost(err) || errors.Is(err, context.DeadlineExceeded) {
		// A deadline: the server did not answer within the store's bound
		// (bounded) or the caller's.
		return framework.StoreUnavailable(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "53"), // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pe.Code, "58"), // system error: I/O
			strings.HasPrefix(pe.Code, "XX"), // internal error, data corrupted
			pe.Code == "55P03",               // lock_not_available: lock_timeout
			pe.Code == "57014",               // query_canceled: statement_timeout
			pe.Code == "25006",               // read_only_sql_transaction: a standby
			pe.Code == "40P01":               // deadlock_detected
			return framework.StoreUnavailable(err)
		}
	}
	return err
}

// connectionLost reports an error that means the connection, not the
// statement, failed.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-03: admin shutdown (what
		// pg_terminate_backend sends), crash shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}

// retryable reports whether a statement that failed with err may be run
// again, once, on another connection. The rule:
//
//   - pgx says nothing was sent (pgconn.SafeToRetry: the connection failed
//     while being acquired or before the first byte went out): any
//     statement, since the server never saw it.
//   - a read (the statement starts with SELECT) whose connection was lost:
//     running a read twice changes nothing.
//   - anything else, no. A write whose connection died after it was sent
//     may have committed: the backend can commit and be terminated before
//     its answer leaves. Running the compare-and-swap UPDATE again would
//     then meet the version it wrote itself, report a conflict, and the
//     flow would deny a good code as replayed; an INSERT could run twice.
//     Such a write answers 503 store_unavailable and the client, which
//     knows what it asked, decides.
//
// A caller's cancelled context is never retried.
func retryable(ctx context.Context, sql string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	return isRead(sql) && connectionLost(err)
}

func isRead(sql string) bool {
	s := strings.TrimSpace(sql)
	return len(s) >= 6 && strings.EqualFold(s[:6], "SELECT")
}

// failed is called with every error of a statement and returns whether
// to retry it. A connection the server terminated rarely dies alone (a
// failover, a restart, an admin ending the sessions of an application),
// and the pool's other idle connections would fail the retry and the next
// requests in turn: the pool is reset (connections in use close when
// returned), so that the retry and what follows connect afresh.
func (p faultPool) failed(ctx context.Context, sql string, err error) bool {
	if err == nil {
		return false
	}
	if connectionLost(err) {
		p.Pool.Reset()
	}
	return retryable(ctx, sql, err)
}

func (p faultPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.Pool.Exec(ctx, sql, args...)
	if p.failed(ctx, sql, err) {
		tag, err = p.Pool.Exec(ctx, sql, args...)
	}
	return tag, unavailable(err)
}

func (p faultPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := p.Pool.Query(ctx, sql, args...)
	if p.failed(ctx, sql, err) {
		rows, err = p.Pool.Query(ctx, sql, args...)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &retryRows{Rows: rows, ctx: ctx, sql: sql, args: args, p: p}, nil
}

func (p faultPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{p: p, ctx: ctx, sql: sql, args: args}
}

// Begin and BeginTx retry as a statement that was not sent: nothing of the
// transaction has run when BEGIN fails. Inside it, nothing is retried
// (the transaction is gone with its connection), only classified.
func (p faultPool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

func (p faultPool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := p.Pool.BeginTx(ctx, opts)
	if p.failed(ctx, "BEGIN", err) || (err != nil && ctx.Err() == nil && connectionLost(err)) {
		// failed retries only what was not sent; a BEGIN that was sent
		// is safe to repeat as well: the session it ran in is gone, and
		// with it the empty transaction.
		tx, err = p.Pool.BeginTx(ctx, opts)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return faultTx{tx}, nil
}

// retryRow runs its query when scanned, so that a lost connection found
// on the way can be retried by the same rule as Exec's.
type retryRow struct {
	p    faultPool
	ctx  context.Context
	sql  string
	args []any
}

func (r retryRow) Scan(dest ...any) error {
	err := r.p.Pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	if !errors.Is(err, pgx.ErrNoRows) && r.p.failed(r.ctx, r.sql, err) {
		err = r.p.Pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return unavailable(err)
}

// retryRows classifies the error that ends the iteration and, for a read
// that lost its connection before its first row, runs it once more: the
// caller has seen nothing yet, so nothing is read twice.
type retryRows struct {
	pgx.Rows
	ctx     context.Context
	sql     string
	args    []any
	p       faultPool
	started bool
	retried bool
}

func (r *retryRows) Next() bool {
	if r.Rows.Next() {
		r.started = true
		return true
	}
	err := r.Rows.Err()
	if r.started || r.retried || !r.p.failed(r.ctx, r.sql, err) {
		return false
	}
	r.retried = true
	rows, qerr := r.p.Pool.Query(r.ctx, r.sql, r.args...)
	if qerr != nil {
		return false // Err reports the first failure
	}
	r.Rows.Close()
	r.Rows = rows
	return r.Next()
}

func (r *retryRows) Err() error { return unavailable(r.Rows.Err()) }

// faultTx classifies the errors of a transaction's statements and commit.
type faultTx struct{ pgx.Tx }

func (t faultTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.Tx.Exec(ctx, sql, args...)
	return tag, unavailable(err)
}

func (t faultTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := t.Tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return errRows{rows}, nil
}

func (t faultTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return errRow{t.Tx.QueryRow(ctx, sql, args...)}
}

func (t faultTx) Commit(ctx context.Context) error { return unavailable(t.Tx.Commit(ctx)) }

type errRows struct{ pgx.Rows }

func (r errRows) Err() error { return unavailable(r.Rows.Err()) }

type errRow struct{ pgx.Row }

func (r errRow) Scan(dest ...any) error { return unavailable(r.Row.Scan(dest...)) }
