package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
)

// rawTx is a transaction of the decision writer, run on the writer's
// driver connection itself (sql.Conn.Raw) rather than through sql.Tx.
//
// database/sql starts a goroutine for every sql.Tx (Tx.awaitDone, which
// rolls the transaction back if its context ends), whatever the context:
// one goroutine created and woken per commit, and at one login at a time
// one commit per login. With an idle P, each such start wakes another OS
// thread (runtime.wakep), which spins, finds nothing and parks again: the
// hand-offs a runtime trace of the c=1 login bench counted per login were
// the HTTP read, the plugin call's gRPC goroutines and this one. The
// decision writer needs none of what awaitDone gives: its statements run
// on a context that cannot be cancelled (see writeDecisions), so the only
// rollback is its own, on an error, below.
type rawTx struct {
	c   *conn
	ctx context.Context
}

// inTxDetached runs fn in one transaction on the writer connection (its
// DSN makes the BEGIN a BEGIN IMMEDIATE): ctx bounds the wait for the
// connection only; BEGIN, the statements and COMMIT run without it, so
// neither database/sql nor the driver starts a goroutine to watch it.
// The connection is held (sql.Conn) from BEGIN to COMMIT, so no other
// statement of this process runs inside the transaction.
func (s *Store) inTxDetached(ctx context.Context, fn func(*rawTx) error) error {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close() // back to the pool
	return c.Raw(func(dc any) error {
		cn, ok := dc.(*conn)
		if !ok {
			return fmt.Errorf("sqlite: writer connection is a %T", dc)
		}
		t := &rawTx{c: cn, ctx: context.WithoutCancel(ctx)}
		defer t.release()
		tx, err := cn.BeginTx(t.ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			tx.Rollback() // fn's error is the one to report
			return err
		}
		if err := tx.Commit(); err != nil {
			// SQLite keeps a transaction open after some failed COMMITs
			// (SQLITE_BUSY); the batch has failed, so end it here rather
			// than leave it open on the pool's one writer connection.
			// After a COMMIT that ended it, this rollback finds none.
			cn.rollbackQuietly(t.ctx)
			return err
		}
		return nil
	})
}

// rollbackQuietly ends the transaction, if one is still open.
func (c *conn) rollbackQuietly(ctx context.Context) {
	_, _ = c.base.ExecContext(ctx, "ROLLBACK", nil)
}

// stmt returns query's statement prepared on this connection, preparing
// it the first time: the decision writer's statements live as long as
// the connection (closed by conn.Close).
func (c *conn) stmt(ctx context.Context, query string) (driver.Stmt, error) {
	if st := c.prepared[query]; st != nil {
		return st, nil
	}
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.prepared == nil {
		c.prepared = map[string]driver.Stmt{}
	}
	c.prepared[query] = st
	return st, nil
}

// namedValues converts args as database/sql would for a driver without a
// NamedValueChecker, into buf (reused: see conn.bound).
func namedValues(buf []driver.NamedValue, args []any) ([]driver.NamedValue, error) {
	nv := buf[:0]
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return nv, nil
}

// bind returns query's statement and args as its driver arguments, in the
// connection's buffer: valid until the next bind.
func (t *rawTx) bind(query string, args []any) (driver.Stmt, []driver.NamedValue, error) {
	st, err := t.c.stmt(t.ctx, query)
	if err != nil {
		return nil, nil, err
	}
	nv, err := namedValues(t.c.bound, args)
	if err != nil {
		return nil, nil, err
	}
	t.c.bound = nv
	return st, nv, nil
}

// release lets go of the values the buffers hold, to their capacity (a
// short statement leaves a longer one's values behind its length): they
// keep their room, not the batch's states and audit rows.
func (t *rawTx) release() {
	clear(t.c.bound[:cap(t.c.bound)])
	clear(t.c.args[:cap(t.c.args)])
}

// exec runs query with args and returns the rows it changed.
func (t *rawTx) exec(query string, args ...any) (int64, error) {
	st, nv, err := t.bind(query, args)
	if err != nil {
		return 0, err
	}
	r, err := st.(driver.StmtExecContext).ExecContext(t.ctx, nv)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// queryInt runs query, which yields one integer.
func (t *rawTx) queryInt(query string, args ...any) (int64, error) {
	st, nv, err := t.bind(query, args)
	if err != nil {
		return 0, err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(t.ctx, nv)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		if err == io.EOF {
			return 0, sql.ErrNoRows
		}
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("%q yields a %T, not an integer", query, dest[0])
	}
	return n, nil
}
