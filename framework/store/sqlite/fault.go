package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twofactor/twofactor/framework"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The store's connections go through a thin wrapper of modernc's driver
// that does two things on every statement, so that no method of the store
// (and no method added later) has to remember them:
//
//   - it wraps a failure of the storage itself in framework.StoreUnavailable
//     (see unavailable), which the framework answers as 503
//     store_unavailable instead of 500 internal;
//   - it refuses to run anything while the store's file watch reports the
//     database file deleted or replaced (see fileWatch): SQLite would go on
//     writing to the unlinked inode, and every enrollment written there is
//     lost at the next restart.
//
// Logical results (a constraint, no rows) pass through untouched.

// baseDriver is modernc's registered "sqlite" driver.
var baseDriver = func() driver.Driver {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err) // the driver is linked in; Open of a known name does not fail
	}
	defer db.Close()
	return db.Driver()
}()

// unavailableCodes are the SQLite primary result codes that mean the
// storage failed rather than the statement: the disk (IOERR, FULL), the
// file (READONLY, CANTOPEN, CORRUPT, NOTADB, NOLFS, PERM), memory, and a
// lock another process held past busy_timeout (BUSY, LOCKED, PROTOCOL).
var unavailableCodes = map[int]bool{
	sqlite3.SQLITE_PERM: true, sqlite3.SQLITE_BUSY: true, sqlite3.SQLITE_LOCKED: true,
	sqlite3.SQLITE_NOMEM: true, sqlite3.SQLITE_READONLY: true, sqlite3.SQLITE_IOERR: true,
	sqlite3.SQLITE_CORRUPT: true, sqlite3.SQLITE_FULL: true, sqlite3.SQLITE_CANTOPEN: true,
	sqlite3.SQLITE_PROTOCOL: true, sqlite3.SQLITE_NOLFS: true, sqlite3.SQLITE_NOTADB: true,
}

// unavailable returns err wrapped in framework.StoreUnavailable when it is
// a storage failure, else err.
func unavailable(err error) error {
	// Every statement passes here, most with no error: errors.As would
	// allocate its target all the same.
	if err == nil {
		return nil
	}
	var e *sqlitedriver.Error
	if errors.As(err, &e) && unavailableCodes[e.Code()&0xff] {
		return framework.StoreUnavailable(err)
	}
	return err
}

// connector opens wrapped connections to one DSN.
type connector struct {
	dsn   string
	fault *atomic.Pointer[error] // the file watch's verdict; nil while the file is the one opened
	// beforeWrite, on the writer's connector, checks the file before each
	// statement (see fileWatch.beforeWrite); nil on the readers'.
	beforeWrite func() error
	// contendedUntil (unix nanoseconds): until then, statements wait only
	// shortBusy for a lock another process holds (see conn.before).
	contendedUntil atomic.Int64
	// busy is how long a statement waits for a lock when not contended:
	// busyTimeout unless set (the checkpointer's is shorter).
	busy time.Duration
	// wrote is set by every statement on the writer's connector (the one
	// with beforeWrite): the checkpointer's sign that the log grew.
	wrote atomic.Bool
}

// A lock held by another process (a backup's BEGIN IMMEDIATE, a CLI
// import) makes a statement wait busy_timeout and then fail. The writer
// has one connection, so the requests queued behind it would each wait
// busy_timeout in turn: the tenth would answer after 50 s. Once one
// statement has waited the full busy_timeout in vain, the lock is known
// to be held: for contendedFor, the statements that follow wait only
// shortBusy, so the queue drains with 503s in a bounded time and the
// first statement after the lock is released succeeds.
const (
	contendedFor = 2 * time.Second
	shortBusy    = 100 * time.Millisecond
)

func (c *connector) longBusy() time.Duration {
	if c.busy != 0 {
		return c.busy
	}
	return busyTimeout
}

func (c *connector) contended() bool { return time.Now().UnixNano() < c.contendedUntil.Load() }

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	cn, err := baseDriver.Open(c.dsn)
	if err != nil {
		return nil, unavailable(err)
	}
	bc, ok := cn.(baseConn)
	if !ok {
		cn.Close()
		return nil, fmt.Errorf("sqlite: the driver's connection %T lacks an interface database/sql needs", cn)
	}
	return &conn{base: bc, c: c}, nil
}

func (c *connector) Driver() driver.Driver { return baseDriver }

func (c *connector) check() error {
	if p := c.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// The interfaces modernc's conn implements and database/sql uses. A
// wrapper that dropped one would silently change database/sql's
// behaviour (it would, say, stop honouring contexts), so the assertions
// below fail the build instead.
type baseConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

var (
	_ baseConn                = (*conn)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
	_ driver.Connector        = (*connector)(nil)
)

type conn struct {
	base  baseConn
	c     *connector
	short bool // busy_timeout is shortBusy on this connection
	// inTx: a transaction is open; its statements skip the file check,
	// which its BEGIN and its COMMIT run (see before).
	inTx bool
	// prepared holds the decision writer's statements (rawTx), for the
	// connection's life.
	prepared map[string]driver.Stmt
	// bound and args are the decision writer's buffers for a statement's
	// arguments (rawTx.bind, chunked.exec), kept from one statement and
	// one batch to the next: a chunk of 64 audit rows is 640 arguments,
	// and allocating them anew for every statement was a tenth of the
	// bytes a login allocated (BenchmarkFrameworkVerify, -memprofile).
	bound []driver.NamedValue
	args  []any
}

// before runs ahead of every statement: it refuses while the file watch
// reports a fault, and sets this connection's busy_timeout for the lock
// contention in force. database/sql uses a connection from one goroutine
// at a time, so short needs no lock.
func (c *conn) before(ctx context.Context) error {
	if err := c.c.check(); err != nil {
		return err
	}
	// In a transaction nothing reaches the file before COMMIT, which
	// checks it again (tx.Commit): one stat per transaction instead of
	// one per statement (a group commit runs hundreds).
	if c.c.beforeWrite != nil {
		c.c.wrote.Store(true)
		if !c.inTx {
			if err := c.c.beforeWrite(); err != nil {
				return err
			}
		}
	}
	if want := c.c.contended(); want != c.short {
		wait := c.c.longBusy()
		if want {
			wait = shortBusy
		}
		if _, err := c.base.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds()), nil); err != nil {
			return unavailable(err)
		}
		c.short = want
	}
	return nil
}

// after classifies a statement's error and notes lock contention.
func (c *conn) after(err error) error {
	if isBusy(err) && !c.short {
		c.c.contendedUntil.Store(time.Now().Add(contendedFor).UnixNano())
	}
	return unavailable(err)
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.c.check(); err != nil {
		return nil, err
	}
	st, err := c.base.PrepareContext(ctx, query)
	if err != nil {
		return nil, unavailable(err)
	}
	return &stmt{base: st, c: c}, nil
}

func (c *conn) Close() error {
	var errs []error
	for _, st := range c.prepared {
		errs = append(errs, st.Close())
	}
	c.prepared = nil
	return errors.Join(append(errs, c.base.Close())...)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	// BEGIN writes nothing: the file is checked at the commit, as for the
	// transaction's statements (one stat per transaction, not two).
	c.inTx = true
	if err := c.before(ctx); err != nil {
		c.inTx = false
		return nil, err
	}
	t, err := c.base.BeginTx(ctx, opts)
	if err != nil {
		c.inTx = false
		return nil, c.after(err)
	}
	return tx{t, c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.before(ctx); err != nil {
		return nil, err
	}
	r, err := c.base.ExecContext(ctx, query, args)
	return r, c.after(err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.before(ctx); err != nil {
		return nil, err
	}
	r, err := c.base.QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.after(err)
	}
	return &rows{base: r, c: c}, nil
}

func (c *conn) Ping(ctx context.Context) error {
	if err := c.c.check(); err != nil {
		return err
	}
	return unavailable(c.base.Ping(ctx))
}

func (c *conn) ResetSession(ctx context.Context) error { return c.base.ResetSession(ctx) }
func (c *conn) IsValid() bool                          { return c.base.IsValid() }

type stmt struct {
	base driver.Stmt
	c    *conn
}

func (s *stmt) Close() error  { return s.base.Close() }
func (s *stmt) NumInput() int { return s.base.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("sqlite: Stmt.Exec without a context is not used")
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("sqlite: Stmt.Query without a context is not used")
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.c.before(ctx); err != nil {
		return nil, err
	}
	r, err := s.base.(driver.StmtExecContext).ExecContext(ctx, args)
	return r, s.c.after(err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.c.before(ctx); err != nil {
		return nil, err
	}
	r, err := s.base.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, s.c.after(err)
	}
	return &rows{base: r, c: s.c}, nil
}

// rows wraps Next, where a write with RETURNING reports a failed commit
// (or a lock it could not get).
type rows struct {
	base driver.Rows
	c    *conn
}

func (r *rows) Columns() []string { return r.base.Columns() }
func (r *rows) Close() error      { return unavailable(r.base.Close()) }

// Next leaves io.EOF as it is (after wraps only SQLite's errors):
// database/sql compares it with ==.
func (r *rows) Next(dest []driver.Value) error { return r.c.after(r.base.Next(dest)) }

type tx struct {
	base driver.Tx
	c    *conn
}

// Commit checks the file first, as a statement outside a transaction
// does: a transaction's writes reach the file at its commit.
func (t tx) Commit() error {
	t.c.inTx = false
	if t.c.c.beforeWrite != nil {
		if err := t.c.c.beforeWrite(); err != nil {
			return errors.Join(err, unavailable(t.base.Rollback()))
		}
	}
	return unavailable(t.base.Commit())
}

func (t tx) Rollback() error {
	t.c.inTx = false
	return unavailable(t.base.Rollback())
}
