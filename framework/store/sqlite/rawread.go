package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
)

// rawQueryRow runs query, which yields at most one row, on one of pool's
// driver connections (sql.Conn.Raw) as a statement prepared once on that
// connection (conn.stmt), and reads the row into dest: the driver's values
// as they are, without database/sql's Stmt, Rows and Scan. It is the
// gate's read, once a login: a CPU profile of the login bench's host had
// database/sql's part of it (the statement's per-connection lookup, the
// arguments' conversion, Rows and its locks, Scan's convertAssign of each
// column, the release) at about a fifth of the read.
//
// ctx bounds the wait for a connection; the statement runs without it, as
// attemptsAndEnrollment explains. A connection that reports itself broken
// is discarded by the pool when it comes back (the driver's IsValid), as
// after any other statement. It returns sql.ErrNoRows for no row, as
// Row.Scan does, and, as Row.Scan does, the error of closing the rows
// (ending the read) when reading the row succeeded.
func rawQueryRow(ctx context.Context, pool *sql.DB, query string, args []driver.NamedValue, dest []driver.Value) error {
	c, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close() // back to the pool
	run := context.WithoutCancel(ctx)
	return c.Raw(func(dc any) error {
		cn, ok := dc.(*conn)
		if !ok {
			return fmt.Errorf("reader connection is a %T", dc)
		}
		st, err := cn.stmt(run, query)
		if err != nil {
			return err
		}
		rows, err := st.(driver.StmtQueryContext).QueryContext(run, args)
		if err != nil {
			return err
		}
		if n := len(rows.Columns()); n != len(dest) {
			rows.Close()
			return fmt.Errorf("%d columns for %d values", n, len(dest))
		}
		if err := rows.Next(dest); err != nil {
			rows.Close() // the read's error is the one to report
			if err == io.EOF {
				return sql.ErrNoRows
			}
			return err
		}
		return rows.Close()
	})
}

// Conversions of the driver's values: modernc gives an INTEGER as int64,
// TEXT as string, a BLOB as []byte and NULL as nil. A value of another
// type fails the read rather than reading as zero.

// nullInt is an INTEGER column's value, ok false for NULL.
func nullInt(v driver.Value) (n int64, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return v, true, nil
	}
	return 0, false, fmt.Errorf("an INTEGER column holds a %T", v)
}

// nullText is a TEXT column's value, ok false for NULL.
func nullText(v driver.Value) (s string, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	}
	return "", false, fmt.Errorf("a TEXT column holds a %T", v)
}

// blobValue is a BLOB column's value: the driver's own copy, nil for NULL
// and for an empty BLOB (as Scan into a []byte gives).
func blobValue(v driver.Value) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	}
	return nil, fmt.Errorf("a BLOB column holds a %T", v)
}
