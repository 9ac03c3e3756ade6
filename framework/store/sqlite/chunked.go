package sqlite

import "strings"

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

// exec runs the statements for rows, in order, in tx.
func (c *chunked) exec(tx *rawTx, rows [][]any) error {
	for i, n := range chunkSizes {
		for len(rows) >= n {
			args := tx.c.args[:0]
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			tx.c.args = args // the connection's buffer (see conn.args)
			if _, err := tx.exec(c.sqls[i], args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}
