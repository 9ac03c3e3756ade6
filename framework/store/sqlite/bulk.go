package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/batch"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ framework.BulkEnrollmentWriter = (*Store)(nil)

// bulkChunk is the rows per INSERT statement: a multi-row INSERT costs
// far less per row than one statement each (binding and stepping through
// database/sql dominate a small row). 64 rows are 512 parameters, well
// under SQLite's limit of 32766.
const bulkChunk = 64

// bulkInsert is the INSERT of n rows.
func bulkInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO enrollments (` + columns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	return b.String()
}

// InsertEnrollments is InsertEnrollmentsAudited with no audit entries.
func (s *Store) InsertEnrollments(ctx context.Context, batch []framework.Enrollment) error {
	return s.InsertEnrollmentsAudited(ctx, batch, nil)
}

// InsertEnrollmentsAudited writes the batch in one transaction on the
// writer connection, in INSERTs of bulkChunk rows: SQLite has no COPY, and
// inside one transaction a row costs a B-tree insert, not a commit. A
// stored key fails the primary key; SQLite then undoes that statement
// only, and its rows are inserted one by one to find the one at fault,
// before the rollback leaves nothing of the batch. The audit entries go
// last in the same transaction (the single writer keeps their ids in
// commit order, as for a decision's).
func (s *Store) InsertEnrollmentsAudited(ctx context.Context, batch []framework.Enrollment, audit []framework.AuditEntry) error {
	if len(batch) == 0 && len(audit) == 0 {
		return nil
	}
	args, err := bulkArgs(batch)
	if err != nil {
		return fmt.Errorf("sqlite: insert enrollments: %w", err)
	}
	audits := make([][]any, len(audit))
	for i, e := range audit {
		if audits[i], err = auditArgs(e); err != nil {
			return fmt.Errorf("sqlite: insert enrollments: audit entry %d: %w", i, err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: insert enrollments: %w", err)
	}
	defer tx.Rollback() // after Commit, a no-op
	if err := insertBulk(ctx, tx, batch, args); err != nil {
		return fmt.Errorf("sqlite: insert enrollments: %w", err)
	}
	if err := insertAuditRows(ctx, tx, audits); err != nil {
		return fmt.Errorf("sqlite: insert enrollments: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: insert enrollments: %w", err)
	}
	return nil
}

// insertBulk inserts batch (args, bulkArgs's) in tx, bulkChunk rows a
// statement.
func insertBulk(ctx context.Context, tx *sql.Tx, batch []framework.Enrollment, args []any) error {
	if len(batch) == 0 {
		return nil
	}
	one, err := tx.PrepareContext(ctx, bulkInsert(1))
	if err != nil {
		return err
	}
	defer one.Close()
	var many *sql.Stmt
	if len(batch) >= bulkChunk {
		if many, err = tx.PrepareContext(ctx, bulkInsert(bulkChunk)); err != nil {
			return err
		}
		defer many.Close()
	}
	for from := 0; from < len(batch); from += bulkChunk {
		to := min(from+bulkChunk, len(batch))
		if to-from == bulkChunk {
			_, err = many.ExecContext(ctx, args[from*bulkArgsPerRow:to*bulkArgsPerRow]...)
		}
		if to-from < bulkChunk || isPrimaryKey(err) {
			err = insertEach(ctx, one, batch, args, from, to)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// insertAuditRows appends audit entries (auditArgs's rows) in tx, in
// order. An import's entries are few beside its rows (one a batch, one a
// skipped user): one prepared statement, run once each.
func insertAuditRows(ctx context.Context, tx *sql.Tx, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, insertAudits.sqls[len(chunkSizes)-1]) // one row
	if err != nil {
		return err
	}
	defer st.Close()
	for _, row := range rows {
		if _, err := st.ExecContext(ctx, row...); err != nil {
			return err
		}
	}
	return nil
}

// insertEach inserts rows from to to one at a time; a stored key is an
// *ExistsError naming its row.
func insertEach(ctx context.Context, one *sql.Stmt, batch []framework.Enrollment, args []any, from, to int) error {
	for i := from; i < to; i++ {
		if _, err := one.ExecContext(ctx, args[i*bulkArgsPerRow:(i+1)*bulkArgsPerRow]...); err != nil {
			if isPrimaryKey(err) {
				return &framework.ExistsError{UserID: batch[i].UserID, Provider: batch[i].Provider}
			}
			return err
		}
	}
	return nil
}

// bulkArgsPerRow are the parameters of one row in bulkInsert.
const bulkArgsPerRow = 8

// bulkArgs checks the whole batch and converts it to statement arguments,
// bulkArgsPerRow a row, before anything is written: a duplicate inside the
// batch is reported as that, not as a clash with a stored row.
func bulkArgs(b []framework.Enrollment) ([]any, error) {
	if err := batch.Check(b); err != nil {
		return nil, err
	}
	args := make([]any, 0, bulkArgsPerRow*len(b))
	for i, e := range b {
		created, err := nanos("CreatedAt", e.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("enrollment %d: %w", i, err)
		}
		updated, err := nanos("UpdatedAt", e.UpdatedAt)
		if err != nil {
			return nil, fmt.Errorf("enrollment %d: %w", i, err)
		}
		var confirmed any // NULL for the zero time
		if !e.ConfirmedAt.IsZero() {
			if confirmed, err = nanos("ConfirmedAt", e.ConfirmedAt); err != nil {
				return nil, fmt.Errorf("enrollment %d: %w", i, err)
			}
		}
		args = append(args, e.UserID, e.Provider, string(e.Status), blob(e.State), framework.FirstVersion(), created, updated, confirmed)
	}
	return args, nil
}

func isPrimaryKey(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// existingChunk is the users per SELECT of ExistingEnrollments: one
// parameter each, under SQLite's limit of 32766 with room to spare.
const existingChunk = 500

// existingQuery looks up existingChunk users of one provider.
var existingQuery = `SELECT user_id FROM enrollments WHERE provider = ? AND user_id IN (?` +
	strings.Repeat(`, ?`, existingChunk-1) + `)`

// ExistingEnrollments looks the users up on a reader connection, by the
// primary key, existingChunk at a time. A short last chunk repeats its
// first user, so that every chunk is the one statement, prepared once.
func (s *Store) ExistingEnrollments(ctx context.Context, provider string, users []string) ([]string, error) {
	found := make(map[string]struct{})
	for from := 0; from < len(users); from += existingChunk {
		chunk := users[from:min(from+existingChunk, len(users))]
		args := make([]any, existingChunk+1)
		args[0] = provider
		for i := range existingChunk {
			args[i+1] = chunk[0]
			if i < len(chunk) {
				args[i+1] = chunk[i]
			}
		}
		if err := collectUsers(ctx, s.r, existingQuery, args, found); err != nil {
			return nil, fmt.Errorf("sqlite: existing enrollments: %w", err)
		}
	}
	return batch.InOrder(users, found), nil
}

func collectUsers(ctx context.Context, db *db, q string, args []any, found map[string]struct{}) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return err
		}
		found[u] = struct{}{}
	}
	return rows.Err()
}
