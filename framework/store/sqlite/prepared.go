package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// db is a pool whose QueryContext, QueryRowContext and ExecContext run
// prepared statements: each query text is prepared once per connection
// and kept, instead of being parsed again on every call. A profile of the
// verify path under load had 10% of the host's CPU in sqlite3_prepare_v2
// for the same three statements. Transactions (BeginTx) are not cached;
// they run rarely.
type db struct {
	*sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// maxPrepared bounds the cache. The store's queries are constant texts, a
// few dozen in all; a text beyond the bound runs unprepared.
const maxPrepared = 128

func newDB(d *sql.DB) *db { return &db{DB: d, stmts: map[string]*sql.Stmt{}} }

// stmt returns the prepared statement for query, or nil when the cache is
// full.
func (d *db) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	d.mu.RLock()
	st := d.stmts[query]
	d.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	d.mu.RLock()
	full := len(d.stmts) >= maxPrepared
	d.mu.RUnlock()
	if full {
		return nil, nil
	}
	// Prepared outside any caller's deadline: the statement outlives the
	// call that first needed it. And outside d.mu: preparing waits for a
	// connection, which on the single writer may be held by a transaction
	// that itself looks in the cache (a deadlock while the lock was held).
	st, err := d.DB.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev := d.stmts[query]; prev != nil { // prepared meanwhile by another caller
		st.Close()
		return prev, nil
	}
	d.stmts[query] = st
	return st, nil
}

func (d *db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.stmt(ctx, query)
	if err != nil || st == nil {
		return d.DB.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (d *db) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.stmt(ctx, query)
	if err != nil || st == nil {
		// The unprepared path reports the same error through Scan.
		return d.DB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (d *db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := d.stmt(ctx, query)
	if err != nil || st == nil {
		return d.DB.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

// Close closes the statements, then the pool.
func (d *db) Close() error {
	d.mu.Lock()
	var errs []error
	for q, st := range d.stmts {
		errs = append(errs, st.Close())
		delete(d.stmts, q)
	}
	d.mu.Unlock()
	return errors.Join(append(errs, d.DB.Close())...)
}

// queryAll runs query on d and reads every row with scan, in order: an
// empty list, never nil, for no row. what names the read in its errors.
func queryAll[T any](ctx context.Context, d *db, what string, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := d.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}
