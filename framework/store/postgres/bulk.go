package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/batch"
)

var _ framework.BulkEnrollmentWriter = (*Store)(nil)

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// InsertEnrollments is InsertEnrollmentsAudited with no audit entries.
func (s *Store) InsertEnrollments(ctx context.Context, batch []framework.Enrollment) error {
	return s.InsertEnrollmentsAudited(ctx, batch, nil)
}

// InsertEnrollmentsAudited streams the batch into the table with COPY,
// then appends the audit entries, in one transaction. COPY stops at the
// first duplicate key with a unique violation, which rolls the whole
// batch back; the offending row is then looked up, so the error names it
// rather than quoting the server's message. The entries are inserted
// under auditLock (audit.go), taken last as a decision takes it, so their
// ids are in commit order and no lock is waited for in a cycle.
func (s *Store) InsertEnrollmentsAudited(ctx context.Context, batch []framework.Enrollment, audit []framework.AuditEntry) error {
	if len(batch) == 0 && len(audit) == 0 {
		return nil
	}
	rows, err := bulkRows(batch)
	if err != nil {
		return fmt.Errorf("postgres: insert enrollments: %w", err)
	}
	audits := make([]auditRow, len(audit))
	for i, e := range audit {
		if audits[i], err = auditRowOf(e); err != nil {
			return fmt.Errorf("postgres: insert enrollments: audit entry %d: %w", i, err)
		}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"enrollments"},
				[]string{"user_id", "provider", "status", "state", "version", "created_at", "updated_at", "confirmed_at"},
				pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		if len(audits) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, auditLockSQL, auditLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, auditRowsSQL, auditColumns(audits)...)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		err = s.findStored(ctx, batch, err)
	}
	if err != nil {
		return fmt.Errorf("postgres: insert enrollments: %w", err)
	}
	return nil
}

// findStored returns an *ExistsError for a row of batch that is already
// stored, or cause when none is (it was deleted again since).
func (s *Store) findStored(ctx context.Context, batch []framework.Enrollment, cause error) error {
	users, providers := make([]string, len(batch)), make([]string, len(batch))
	for i, e := range batch {
		users[i], providers[i] = e.UserID, e.Provider
	}
	var user, provider string
	err := s.pool.QueryRow(ctx, `
		SELECT e.user_id, e.provider
		FROM enrollments e
		JOIN unnest($1::text[], $2::text[]) AS b(user_id, provider)
		  ON e.user_id = b.user_id AND e.provider = b.provider
		LIMIT 1`, users, providers).Scan(&user, &provider)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w (%w)", framework.ErrExists, cause)
		}
		return errors.Join(cause, err)
	}
	return &framework.ExistsError{UserID: user, Provider: provider}
}

// bulkRows checks the whole batch and converts it to COPY rows before
// anything is sent: a duplicate inside the batch is reported as that, not
// as a clash with a stored row.
func bulkRows(b []framework.Enrollment) ([][]any, error) {
	if err := batch.Check(b); err != nil {
		return nil, err
	}
	rows := make([][]any, len(b))
	for i, e := range b {
		created, err := timestamp("CreatedAt", e.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("enrollment %d: %w", i, err)
		}
		updated, err := timestamp("UpdatedAt", e.UpdatedAt)
		if err != nil {
			return nil, fmt.Errorf("enrollment %d: %w", i, err)
		}
		var confirmed *time.Time // NULL for the zero time
		if !e.ConfirmedAt.IsZero() {
			c, err := timestamp("ConfirmedAt", e.ConfirmedAt)
			if err != nil {
				return nil, fmt.Errorf("enrollment %d: %w", i, err)
			}
			confirmed = &c
		}
		rows[i] = []any{e.UserID, e.Provider, string(e.Status), blob(e.State), framework.FirstVersion(), created, updated, confirmed}
	}
	return rows, nil
}

// ExistingEnrollments looks every user up in one statement, by the
// primary key.
func (s *Store) ExistingEnrollments(ctx context.Context, provider string, users []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM enrollments WHERE provider = $1 AND user_id = ANY($2::text[])`, provider, users)
	if err != nil {
		return nil, fmt.Errorf("postgres: existing enrollments: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: existing enrollments: %w", err)
	}
	set := make(map[string]struct{}, len(found))
	for _, u := range found {
		set[u] = struct{}{}
	}
	return batch.InOrder(users, set), nil
}
