package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/groupcommit"

	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is a framework.Store in one SQLite file.
type Store struct {
	// SQLite lets one connection write at a time. w holds exactly one
	// connection, so this process's writers queue in database/sql, in
	// order and honouring their contexts, instead of colliding inside
	// SQLite, where each loser polls for the lock with the busy handler's
	// growing sleeps (up to 100ms apiece) and fails with "database is
	// locked" once busy_timeout runs out. Measured under -race with an
	// unlimited pool, 20 racing writers get through, but 200 took about 5s
	// (the timeout) and of 1000, 429 failed; with one connection 1000 took
	// under 3s and none failed. Every statement here is a single autocommit
	// statement, so each holds the connection briefly. busy_timeout still
	// matters: it is how this process waits for another process's writer.
	w *db
	// r serves Get and List. WAL lets readers run beside the writer and each
	// other, so reads need not queue behind w. query_only makes a write
	// sent here by mistake fail instead of competing with w for the lock.
	r *db
	// decisions group-commits decisions and audit entries (decision.go).
	decisions *groupcommit.Writer[decisionArgs]
	// ledger holds the gate's reservations until settled (ledger.go).
	ledger *ledger
	// watch notices the file deleted or replaced (see fileWatch).
	watch *fileWatch
	// checkpoints copies the log into the database file in the
	// background (checkpoint.go).
	checkpoints *checkpointer
}

var _ framework.Store = (*Store)(nil)

// busyTimeout is how long a statement waits for a lock held by another
// process (another Open of the same file) before failing.
const busyTimeout = 5 * time.Second

// Open opens the existing store at path and brings its schema up to date.
// It refuses, with an error that errors.Is framework.ErrStoreNotInitialized,
// a missing file and a store that is empty and was never marked by Create:
// serving either would treat every enrolled user as not enrolled. A store
// an earlier release filled is marked by its upgrade and opens.
func Open(ctx context.Context, path string) (*Store, error) { return open(ctx, path, false) }

// Create opens the store at path, creating the file (mode 0600) if it does
// not exist, brings its schema up to date and marks it as initialized
// (see InstallID). It is what "twofactor init" runs, and what an embedding
// application calls when it means to start with an empty store. On an
// existing store it changes nothing but the schema. The parent directory
// must exist: creating it would hide a mistyped path behind an empty
// database.
func Create(ctx context.Context, path string) (*Store, error) { return open(ctx, path, true) }

func open(ctx context.Context, path string, create bool) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if create {
		err = createFile(abs)
	} else {
		err = existingFile(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	watch, err := newFileWatch(abs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	wc := &connector{dsn: dsn(abs, false), fault: &watch.fault, beforeWrite: watch.beforeWrite}
	w := sql.OpenDB(wc)
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := initialize(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: migrate: %w", path, err)
	}
	var id string
	if create {
		id, err = mark(ctx, w)
	} else {
		id, err = installID(ctx, w)
	}
	if err == nil && id == "" {
		err = fmt.Errorf("the database holds no data and was never initialized: %w", framework.ErrStoreNotInitialized)
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r := sql.OpenDB(&connector{dsn: dsn(abs, true), fault: &watch.fault})
	// Keep every reader idle rather than reopening: opening a connection
	// runs the DSN pragmas again.
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{w: newDB(w), r: newDB(r), watch: watch, ledger: newLedger(),
		checkpoints: newCheckpointer(abs, &watch.fault, &wc.wrote)}
	go watch.run()
	go s.checkpoints.run(checkpointEvery)
	if err := s.startDecisions(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// existingFile checks that path is a regular file. SQLite's mode=rw would
// refuse a missing file too, but with "unable to open database file",
// which names neither the cause nor the fix.
func existingFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the database file does not exist: %w", framework.ErrStoreNotInitialized)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// initialize migrates the schema, retrying while SQLite reports the
// database busy without having waited for it.
//
// That happens only while a new file is first switched to WAL: each
// connection's journal_mode(WAL) reads the header and then upgrades to an
// exclusive lock to rewrite it, and SQLite will not wait for a lock
// upgrade (two connections upgrading would wait for each other forever): it
// fails one with SQLITE_BUSY at once, without the busy handler, so that it
// lets go of its read lock and tries again. Several Opens racing on a new
// file hit this (four at once, in a few percent of runs). Once one of them
// has converted the file nobody needs the upgrade again. The retries stop
// at busyTimeout, the wait every other lock gets, so a real lock-out still
// fails.
func initialize(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 64*time.Millisecond) {
		err := migrate(ctx, db)
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		// Jitter, so that openers who failed together retry apart.
		t := time.NewTimer(delay/2 + rand.N(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

func isBusy(err error) bool {
	if err == nil { // as in unavailable
		return false
	}
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// createFile creates path with mode 0600 unless it exists. SQLite would
// create it too, but with 0644 less the umask: readable by every local user,
// and the file holds every user's (sealed) second factors. SQLite gives the
// -wal and -shm files it creates later the database file's mode.
func createFile(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("parent %s is not a directory", dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// dsn builds a file: URI for path. A URI, unlike a plain name, survives any
// character in the path ('?' would otherwise start the query) and lets
// SQLite's mode=rw apply: open an existing file, never create one, so the
// file is always the one createFile made with 0600.
func dsn(path string, readOnly bool) string { return dsnBusy(path, readOnly, busyTimeout) }

// dsnBusy is dsn with busy_timeout busy.
func dsnBusy(path string, readOnly bool, busy time.Duration) string {
	q := url.Values{}
	q.Set("mode", "rw")
	// The driver runs busy_timeout first whatever the order here, so the
	// pragmas after it wait for a lock instead of failing.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	// SQLite leaves foreign keys unenforced unless asked, per connection;
	// on from the start, a later migration's REFERENCES cannot be ignored.
	q.Add("_pragma", "foreign_keys(1)")
	// WAL: readers and the writer do not block each other, and a commit is
	// one append to the log.
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs the log on every commit. In WAL mode NORMAL may lose the
	// last commits on power loss; a confirmed enrollment must never be lost.
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// Transactions on the writer take the write lock at BEGIN. A
		// deferred transaction that reads and then writes can fail with
		// SQLITE_BUSY when another process committed in between, and
		// busy_timeout cannot help it; BEGIN IMMEDIATE waits instead.
		q.Set("_txlock", "immediate")
		// Checkpoints run in the background (checkpoint.go); the
		// writer's own is the backstop.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutoCheckpoint))
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Close closes both pools. Closing the last connection checkpoints the log
// into the database file.
func (s *Store) Close() error {
	if s.decisions != nil {
		s.decisions.Stop()
	}
	s.watch.close()
	// The checkpointer's connection closes first, so that the writer's
	// close, the last, checkpoints the log and removes it.
	return errors.Join(s.checkpoints.close(), s.r.Close(), s.w.Close())
}

const columns = `user_id, provider, status, state, version, created_at, updated_at, confirmed_at`

// readColumns are what reads return: columns, the factors a pending
// enrollment was begun with (Enrollment.Factors) and its sign-in code
// (Enrollment.SignInCode, framework.EncodeSignInCode's text), which only
// PutPending writes: a bulk insert's rows keep the defaults (none).
const readColumns = columns + `, factors, sign_in_code`

// PutPending is one statement, so no other writer can come between finding
// the row pending and replacing it. The WHERE on DO UPDATE turns an active
// row into "no row returned", which is how ErrAlreadyActive is detected
// without a second query.
func (s *Store) PutPending(ctx context.Context, e framework.Enrollment) (framework.Enrollment, error) {
	created, err := nanos("CreatedAt", e.CreatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: put pending enrollment: %w", err)
	}
	updated, err := nanos("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: put pending enrollment: %w", err)
	}
	got, err := queryOne(ctx, s.w, `
		INSERT INTO enrollments (`+readColumns+`)
		VALUES (?, ?, 'pending', ?, ?, ?, ?, NULL, ?, ?)
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
		e.UserID, e.Provider, blob(e.State), framework.FirstVersion(), created, updated, e.Factors, framework.EncodeSignInCode(e.SignInCode))
	if errors.Is(err, sql.ErrNoRows) {
		err = framework.ErrAlreadyActive
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: put pending enrollment: %w", err)
	}
	return got, nil
}

func (s *Store) Get(ctx context.Context, userID, provider string) (framework.Enrollment, error) {
	got, err := queryOne(ctx, s.r,
		`SELECT `+readColumns+` FROM enrollments WHERE user_id = ? AND provider = ?`,
		userID, provider)
	if errors.Is(err, sql.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: get enrollment: %w", err)
	}
	return got, nil
}

// List orders by provider with SQLite's default BINARY collation, which is
// byte order: the order Go's string comparison gives.
func (s *Store) List(ctx context.Context, userID string) ([]framework.Enrollment, error) {
	// An unknown user is an empty list, never nil (queryAll).
	return queryAll(ctx, s.r, "list enrollments", scan,
		`SELECT `+readColumns+` FROM enrollments WHERE user_id = ? ORDER BY provider`, userID)
}

// Update is compare-and-swap in one statement: the version test and the
// write happen under the same write lock, so of several writers holding the
// same version exactly one matches.
func (s *Store) Update(ctx context.Context, e framework.Enrollment) (framework.Enrollment, error) {
	if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
		return framework.Enrollment{}, fmt.Errorf("sqlite: update enrollment: invalid status %q", e.Status)
	}
	updated, err := nanos("UpdatedAt", e.UpdatedAt)
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: update enrollment: %w", err)
	}
	var confirmed any // NULL for the zero time, which UnixNano cannot represent
	if !e.ConfirmedAt.IsZero() {
		if confirmed, err = nanos("ConfirmedAt", e.ConfirmedAt); err != nil {
			return framework.Enrollment{}, fmt.Errorf("sqlite: update enrollment: %w", err)
		}
	}
	got, err := queryOne(ctx, s.w, `
		UPDATE enrollments SET
			status       = ?,
			state        = ?,
			version      = version + 1,
			updated_at   = ?,
			confirmed_at = ?
		WHERE user_id = ? AND provider = ? AND version = ?
		RETURNING `+readColumns,
		string(e.Status), blob(e.State), updated, confirmed,
		e.UserID, e.Provider, e.Version)
	if errors.Is(err, sql.ErrNoRows) {
		err = framework.ErrConflict
	}
	if err != nil {
		return framework.Enrollment{}, fmt.Errorf("sqlite: update enrollment: %w", err)
	}
	return got, nil
}

func (s *Store) Delete(ctx context.Context, userID, provider string) error {
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM enrollments WHERE user_id = ? AND provider = ?`,
		userID, provider)
	if err != nil {
		return fmt.Errorf("sqlite: delete enrollment: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: delete enrollment: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete enrollment: %w", framework.ErrNotFound)
	}
	return nil
}

// queryOne runs a statement expected to yield at most one row, and
// sql.ErrNoRows if it yields none.
func queryOne(ctx context.Context, db *db, query string, args ...any) (framework.Enrollment, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return framework.Enrollment{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return framework.Enrollment{}, err
		}
		return framework.Enrollment{}, sql.ErrNoRows
	}
	e, err := scan(rows)
	if err != nil {
		return framework.Enrollment{}, err
	}
	// Step to the end rather than just closing: for a write with RETURNING,
	// the autocommit transaction commits when the statement finishes, and
	// only a step reports a failed commit (Close after a partial read would
	// swallow it in database/sql).
	if rows.Next() {
		return framework.Enrollment{}, errors.New("more than one row")
	}
	if err := rows.Err(); err != nil {
		return framework.Enrollment{}, err
	}
	return e, nil
}

func scan(rows *sql.Rows) (framework.Enrollment, error) {
	var (
		e                framework.Enrollment
		status           string
		created, updated int64
		confirmed        sql.NullInt64
		signIn           string
	)
	if err := rows.Scan(&e.UserID, &e.Provider, &status, &e.State, &e.Version, &created, &updated, &confirmed, &e.Factors, &signIn); err != nil {
		return framework.Enrollment{}, err
	}
	e.SignInCode = framework.DecodeSignInCode(signIn)
	e.Status = framework.Status(status)
	e.CreatedAt = time.Unix(0, created).UTC()
	e.UpdatedAt = time.Unix(0, updated).UTC()
	if confirmed.Valid {
		e.ConfirmedAt = time.Unix(0, confirmed.Int64).UTC()
	}
	return e, nil
}

// The times UnixNano can represent, roughly years 1678 to 2262. Outside them
// UnixNano silently wraps, which would store a wrong time instead of failing.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func nanos(field string, t time.Time) (int64, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("%s %s is outside the storable range %s to %s",
			field, t.UTC().Format(time.RFC3339), minTime.UTC().Format(time.RFC3339), maxTime.UTC().Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

// blob keeps an empty state from becoming NULL: the driver binds a nil slice
// as NULL, which state's NOT NULL would reject.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CountStranded passes the usable providers as one JSON array, so the
// statement is the same whatever their number.
func (s *Store) CountStranded(ctx context.Context, usable []string) (int, error) {
	list, err := json.Marshal(usable)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count stranded users: %w", err)
	}
	var n int
	err = s.r.QueryRowContext(ctx, `
		SELECT COUNT(DISTINCT e.user_id) FROM enrollments e
		WHERE e.status = 'active' AND NOT EXISTS (
			SELECT 1 FROM enrollments u
			WHERE u.user_id = e.user_id AND u.status = 'active' AND u.provider IN (SELECT value FROM json_each(?)))`,
		string(list)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count stranded users: %w", err)
	}
	return n, nil
}
