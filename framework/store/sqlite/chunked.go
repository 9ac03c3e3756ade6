package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// chunked is a statement the decision writer runs for many rows of a
// batch at once instead of once per row: one statement per chunk of
// chunkSizes[i] rows (largest first), each its own prepared text, so a
// batch of n rows takes a handful of statements whatever n.
type chunked struct {
	sqls [len(chunkSizes)]string
}

var chunkSizes = [...]int{64, 16, 4, 1}

// newChunked builds the texts: prefix, then n times item separated by
// ", ", then suffix.
func newChunked(prefix, item, suffix string) chunked {
	var c chunked
	for i, n := range chunkSizes {
		c.sqls[i] = prefix + strings.Repeat(item+", ", n-1) + item + suffix
	}
	return c
}

// exec runs the statements for rows, in order, with the statements stmt
// returns for c.sqls.
func (c *chunked) exec(ctx context.Context, stmt func(string) (*sql.Stmt, error), rows [][]any) error {
	var args []any
	for i, n := range chunkSizes {
		for len(rows) >= n {
			st, err := stmt(c.sqls[i])
			if err != nil {
				return err
			}
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}
