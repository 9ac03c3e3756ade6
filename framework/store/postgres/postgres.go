package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/groupcommit"
)

// defaultMaxConns is the pool's size unless the DSN sets pool_max_conns
// (or pgxpool's own default, one per CPU, is larger).
const defaultMaxConns = 16

// Store is a framework.Store in a PostgreSQL database.
type Store struct {
	// Unlike SQLite, PostgreSQL takes concurrent writers, so one pool
	// serves reads and writes alike; row locks, not the pool, order
	// writers to the same row.
	pool faultPool
	// decisions group-commits decisions and audit entries (decision.go).
	decisions *groupcommit.Writer[decisionArgs]
	// serverWait bounds a decision batch's or a reservation's wait for
	// the server (see bounded).
	serverWait time.Duration
}

// bounded is ctx ending after s.serverWait at the latest: the bound of a
// call that every login waits for (a reservation, a decision batch) on a
// server that stopped answering. The server's own statement_timeout ends
// a slow statement first, with an error the connection survives; this
// ends the wait for a server that answers nothing, and the call fails as
// the store being unavailable (503), never as a decision.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.serverWait)
}

var _ framework.Store = (*Store)(nil)

// Open connects to the database dsn names and brings its schema up to date.
// It refuses, with an error that errors.Is framework.ErrStoreNotInitialized,
// a store that is empty and was never marked by Create (a wrong DSN or
// search_path, a restore that did not happen): serving it would treat
// every enrolled user as not enrolled. A store an earlier release filled is
// marked by its upgrade and opens. Errors never contain the DSN's password.
func Open(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, false, nil) }

// Create is Open for a store created on purpose ("twofactor init", or an
// embedding application starting afresh): it marks the store as
// initialized (see InstallID) if it is not yet. On a marked store it
// changes nothing but the schema.
func Create(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, true, nil) }

// open is Open or Create; tune, when not nil, changes the pool's
// configuration last (the tests' tracer).
func open(ctx context.Context, dsn string, create bool, tune func(*pgxpool.Config)) (*Store, error) {
	// An empty DSN would make pgx fall back to the PG* environment
	// variables and then to a local socket: a missing setting would connect
	// to some default database instead of failing.
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("postgres: open: empty DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, openError(dsn, "parse DSN", err)
	}
	params := cfg.ConnConfig.RuntimeParams
	// Forced, not defaulted: the single-statement compare-and-swap relies
	// on READ COMMITTED's re-check of the WHERE clause after waiting for a
	// concurrent writer (see the package comment). Under a stricter
	// server default the losing writer would get a serialization error
	// instead of ErrConflict.
	params["default_transaction_isolation"] = "read committed"
	// Forced too: a decision is answered once its commit is durable (an
	// allow spends the code; see writePipelined). A role or database
	// tuned with synchronous_commit = off (or local, remote_write) would
	// have the server answer the commit before its WAL is flushed (or
	// before a synchronous standby has it), and a crash or failover then
	// takes back a code's use: it passes again. A start-up parameter
	// outranks ALTER ROLE, ALTER DATABASE and postgresql.conf. The DSN may
	// ask for remote_apply, which waits for more. The reservation's own
	// asynchronous commit (asyncCommitSQL) is local to its transaction.
	if params["synchronous_commit"] != "remote_apply" {
		params["synchronous_commit"] = "on"
	}
	if params["application_name"] == "" {
		// Lets a DBA tell this store's sessions apart in pg_stat_activity.
		params["application_name"] = "twofactor"
	}
	configure(cfg)
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default is max(4, CPUs). Every login takes a
		// connection for its reservation while the decision writer holds
		// one through its commit's flush, so at a few dozen concurrent
		// logins requests queued for 4 connections: on the 2-core bench
		// machine a login cost the host more CPU (the pool's wait and
		// wake-ups) and throughput was lower than with 16. The DSN's
		// pool_max_conns still decides; the replicas' pools together must
		// stay under the server's max_connections.
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	if tune != nil {
		tune(cfg)
	}
	ms, err := sessionTimeout(ctx, cfg.ConnConfig)
	if err != nil {
		step := "connect"
		if errors.Is(err, errTimeoutUnread) {
			step = "statement_timeout"
		}
		return nil, openError(dsn, step, err)
	}
	params["statement_timeout"] = strconv.FormatInt(ms, 10)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, openError(dsn, "connect", err)
	}
	// The pool connects lazily; connect now so that a server that refuses
	// the pool's connections is reported as that, not as a failed
	// migration.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, openError(dsn, "connect", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, openError(dsn, "migrate", err)
	}
	s := &Store{pool: faultPool{pool}, serverWait: serverWait(ms)}
	s.startDecisions()
	var id string
	if create {
		_, err = pool.Exec(ctx, `INSERT INTO install (id, install_id) VALUES (1, md5(random()::text || clock_timestamp()::text)) ON CONFLICT (id) DO NOTHING`)
	}
	if err == nil {
		id, err = s.InstallID(ctx)
	}
	if err == nil && id == "" {
		err = fmt.Errorf("the database holds no data and was never initialized: %w", framework.ErrStoreNotInitialized)
	}
	if err != nil {
		s.Close()
		return nil, openError(dsn, "install mark", err)
	}
	return s, nil
}

// InstallID returns the mark Create wrote (or the upgrade migration, for a
// store an earlier release filled), or "" for an unmarked store.
func (s *Store) InstallID(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT install_id FROM install WHERE id = 1`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("postgres: read install mark: %w", err)
	}
	return id, nil
}

// openError wraps an Open failure, masking the DSN's passwords in its
// text. pgx masks them in its own parse errors too, but only as a best
// effort for a string it could not parse; a password in a log is a leak
// that cannot be taken back, so this masks again. errors.Is and errors.As
// still see the original error.
func openError(dsn, step string, err error) error {
	return fmt.Errorf("postgres: open: %s: %w", step, &redactedError{err: err, secrets: dsnSecrets(dsn)})
}

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

var (
	// The userinfo password of a URL: what follows the first ':' up to
	// the '@' that ends the userinfo, found as pgx finds it (the first '@'
	// before any '/').
	urlPassword = regexp.MustCompile(`^postgres(?:ql)?://[^@/:]*:([^@/]*)@`)
	// password= or sslpassword= in keyword/value form or a URL query,
	// quoted or not.
	kvPassword = regexp.MustCompile(`(?i)(?:^|[\s?&])(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// dsnSecrets returns the passwords written in dsn, in every spelling an
// error message might quote them in: raw, percent-decoded and unquoted.
// Longest first, so that a password containing another is masked whole.
func dsnSecrets(dsn string) []string {
	var raw []string
	if m := urlPassword.FindStringSubmatch(dsn); m != nil {
		raw = append(raw, m[1])
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		raw = append(raw, m[1])
	}
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range raw {
		add(s)
		if u, err := url.QueryUnescape(s); err == nil {
			add(u)
		}
		if u, err := url.PathUnescape(s); err == nil {
			add(u)
		}
		if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
			inner := s[1 : len(s)-1]
			add(inner)
			add(strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(inner))
		}
	}
	// Longest first: masking "pass" inside "password1" first would leave
	// "xxxxxword1", which no longer matches the longer secret.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Ping reports whether the store can take writes, for readiness checks:
// one small UPDATE of the install mark reaches the server, finds this
// store's schema on the search path and proves the server accepts writes
// (a standby promoted away from, or a read-only server, refuses it).
func (s *Store) Ping(ctx context.Context) error {
	tag, err := s.pool.Exec(ctx, `UPDATE install SET probed_at = now() WHERE id = 1`)
	if err == nil && tag.RowsAffected() != 1 {
		err = fmt.Errorf("the install mark is gone: %w", framework.ErrStoreNotInitialized)
	}
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", framework.StoreUnavailable(err))
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	if s.decisions != nil {
		s.decisions.Stop()
	}
	s.pool.Close()
	return nil
}

const columns = `user_id, provider, status, state, version, created_at, updated_at, confirmed_at`

// readColumns are what reads return: columns and the factors a pending
// enrollment was begun with (Enrollment.Factors), which only PutPending
// writes (a bulk insert's active rows keep the column's default,
// framework.FactorsUnknown), and the code its user signs in with
// (Enrollment.SignInCode, framework.EncodeSignInCode's text), which only
// PutPending writes too ("" on a bulk insert's rows: none).
const readColumns = columns + `, factors, sign_in_code`

// PutPending is one statement, so no other writer can come between finding
// the row pending and replacing it: INSERT ... ON CONFLICT DO UPDATE either
// inserts or locks the existing row and updates it, never failing with a
// duplicate key however many race. The WHERE on DO UPDATE turns an active
// row into "no row returned", which is how ErrAlreadyActive is detected
// without a second query.
func (s *Store) PutPending(ctx context.Context, e framework.Enrollment) (framework.Enrollment, error) {
	created, err := timestamp("CreatedAt", e.CreatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: put pending enrollment: %w", err)
	}
	updated, err := timestamp("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: put pending enrollment: %w", err)
	}
	got, err := scan(s.pool.QueryRow(ctx, `
		INSERT INTO enrollments (`+readColumns+`)
		VALUES ($1, $2, 'pending', $3, $6, $4, $5, NULL, $7, $8)
		ON CONFLICT (user_id, provider) DO UPDATE SET
			state        = excluded.state,
			version      = enrollments.version + 1,
			created_at   = excluded.created_at,
			updated_at   = excluded.updated_at,
			confirmed_at = NULL,
			factors      = excluded.factors,
			sign_in_code = excluded.sign_in_code
		WHERE enrollments.status = 'pending'
		RETURNING `+readColumns,
		e.UserID, e.Provider, blob(e.State), created, updated, framework.FirstVersion(), e.Factors, framework.EncodeSignInCode(e.SignInCode)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrAlreadyActive
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: put pending enrollment: %w", err)
	}
	return got, nil
}

func (s *Store) Get(ctx context.Context, userID, provider string) (framework.Enrollment, error) {
	got, err := scan(s.pool.QueryRow(ctx,
		`SELECT `+readColumns+` FROM enrollments WHERE user_id = $1 AND provider = $2`,
		userID, provider))
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: get enrollment: %w", err)
	}
	return got, nil
}

// List orders by provider, whose column collation is "C": byte order, the
// order Go's string comparison and the SQLite store give, not the
// database locale's.
func (s *Store) List(ctx context.Context, userID string) ([]framework.Enrollment, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+readColumns+` FROM enrollments WHERE user_id = $1 ORDER BY provider`,
		userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list enrollments: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (framework.Enrollment, error) {
		return scan(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list enrollments: %w", err)
	}
	if list == nil {
		list = []framework.Enrollment{} // an unknown user is an empty list, never nil
	}
	return list, nil
}

// Update is compare-and-swap in one statement. Of several writers holding
// the same version, the first to lock the row updates it; the others wait
// for its commit, re-check "version = $n" against the new row (READ
// COMMITTED), find it false and update nothing.
func (s *Store) Update(ctx context.Context, e framework.Enrollment) (framework.Enrollment, error) {
	if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
		return framework.Enrollment{}, fmt.Errorf("postgres: update enrollment: invalid status %q", e.Status)
	}
	updated, err := timestamp("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: update enrollment: %w", err)
	}
	var confirmed *time.Time // NULL for the zero time: "not confirmed"
	if !e.ConfirmedAt.IsZero() {
		c, err := timestamp("ConfirmedAt", e.ConfirmedAt)
		if err != nil {
			return framework.Enrollment{}, fmt.Errorf("postgres: update enrollment: %w", err)
		}
		confirmed = &c
	}
	got, err := scan(s.pool.QueryRow(ctx, `
		UPDATE enrollments SET
			status       = $1,
			state        = $2,
			version      = version + 1,
			updated_at   = $3,
			confirmed_at = $4
		WHERE user_id = $5 AND provider = $6 AND version = $7
		RETURNING `+readColumns,
		string(e.Status), blob(e.State), updated, confirmed,
		e.UserID, e.Provider, e.Version))
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrConflict
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("postgres: update enrollment: %w", err)
	}
	return got, nil
}

// Delete removes the enrollment; its transactions go with it (ON DELETE
// CASCADE).
func (s *Store) Delete(ctx context.Context, userID, provider string) error {
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM enrollments WHERE user_id = $1 AND provider = $2`,
		userID, provider)
	if err != nil {
		return fmt.Errorf("postgres: delete enrollment: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete enrollment: %w", framework.ErrNotFound)
	}
	return nil
}

// scan reads one enrollment. pgx's QueryRow Scan reads the result to its
// end, so a write with RETURNING that fails at commit reports it here.
// Scanning bytea into a []byte copies it, so the caller owns State.
func scan(row pgx.Row) (framework.Enrollment, error) {
	var (
		e         framework.Enrollment
		status    string
		confirmed *time.Time
		signIn    string
	)
	if err := row.Scan(&e.UserID, &e.Provider, &status, &e.State, &e.Version, &e.CreatedAt, &e.UpdatedAt, &confirmed, &e.Factors, &signIn); err != nil {
		return framework.Enrollment{}, err
	}
	e.SignInCode = framework.DecodeSignInCode(signIn)
	e.Status = framework.Status(status)
	// pgx returns timestamptz in the local zone; the suite, and callers
	// comparing with the SQLite store, expect UTC.
	e.CreatedAt = e.CreatedAt.UTC()
	e.UpdatedAt = e.UpdatedAt.UTC()
	if confirmed != nil {
		e.ConfirmedAt = confirmed.UTC()
	}
	return e, nil
}

// The times the SQLite store can hold (it keeps unix nanoseconds), roughly
// years 1678 to 2262. PostgreSQL could hold far more, but a write one
// backend accepts and the other refuses would make them disagree, and
// would make a database impossible to move from this store to SQLite. The
// range also catches a zero time written by mistake.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timestamp checks t is storable and returns it in UTC. PostgreSQL keeps
// microseconds; pgx drops the nanoseconds below them.
func timestamp(field string, t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%s %s is outside the storable range %s to %s",
			field, t.UTC().Format(time.RFC3339), minTime.UTC().Format(time.RFC3339), maxTime.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// blob keeps an empty state from becoming NULL: pgx sends a nil slice as
// NULL, which state's NOT NULL would reject.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *Store) CountStranded(ctx context.Context, usable []string) (int, error) {
	if usable == nil {
		usable = []string{}
	}
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT COUNT(DISTINCT e.user_id) FROM enrollments e
		WHERE e.status = 'active' AND NOT EXISTS (
			SELECT 1 FROM enrollments u
			WHERE u.user_id = e.user_id AND u.status = 'active' AND u.provider = ANY($1::text[]))`, usable).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count stranded users: %w", err)
	}
	return n, nil
}
