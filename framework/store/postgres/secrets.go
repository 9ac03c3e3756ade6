package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/batch"
)

var (
	_ framework.SecretStore       = (*Store)(nil)
	_ framework.EnrollmentScanner = (*Store)(nil)
)

// LoadOrCreateSecret inserts and then reads in two statements, not one.
// When a replica starting at the same moment inserted first, ON CONFLICT DO
// NOTHING waits for it to commit and skips the insert, but a SELECT in the
// same statement would still read with the statement's earlier snapshot and
// find no row. The second statement takes a new snapshot, which has it.
func (s *Store) LoadOrCreateSecret(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO host_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, blob(sealed)); err != nil {
		return nil, fmt.Errorf("postgres: create host secret: %w", err)
	}
	var stored []byte
	if err := s.pool.QueryRow(ctx, `SELECT sealed FROM host_secrets WHERE name = $1`, name).Scan(&stored); err != nil {
		return nil, fmt.Errorf("postgres: load host secret: %w", err)
	}
	return stored, nil
}

// ReplaceSecret is compare-and-swap on the value itself, in one statement,
// as Update is on the version.
func (s *Store) ReplaceSecret(ctx context.Context, name string, old, sealed []byte) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE host_secrets SET sealed = $1 WHERE name = $2 AND sealed = $3`,
		blob(sealed), name, blob(old))
	if err != nil {
		return fmt.Errorf("postgres: replace host secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: replace host secret: %w", framework.ErrConflict)
	}
	return nil
}

// ScanEnrollments pages by key: the row comparison and the ORDER BY both
// use the key columns' "C" collation, so the order is the primary key's
// and each page is a range scan of its index.
func (s *Store) ScanEnrollments(ctx context.Context, afterUser, afterProvider string, limit int) ([]framework.Enrollment, error) {
	var lim any = limit
	if limit < 0 {
		lim = nil // SQLite reads a negative LIMIT as none; PostgreSQL would refuse it
	}
	rows, err := s.pool.Query(ctx, `SELECT `+readColumns+` FROM enrollments
		WHERE (user_id, provider) > ($1, $2) ORDER BY user_id, provider LIMIT $3`,
		afterUser, afterProvider, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan enrollments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (framework.Enrollment, error) {
		return scan(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: scan enrollments: %w", err)
	}
	if out == nil {
		out = []framework.Enrollment{}
	}
	return out, nil
}

// resealSQL is Update's compare-and-swap on state only: a re-seal keeps
// updated_at (the contract's).
const resealSQL = `UPDATE enrollments SET state = $1, version = version + 1
	WHERE user_id = $2 AND provider = $3 AND version = $4`

// ResealEnrollments sends the batch's compare-and-swaps as one pgx.Batch
// in one transaction: one round trip and one durable commit for the whole
// batch instead of one a row. The rows are updated in key order, the one
// global lock order (lockorder.go), so a decision batch writing some of
// the same rows meanwhile never waits on this one in a cycle.
func (s *Store) ResealEnrollments(ctx context.Context, b []framework.Enrollment) ([]bool, error) {
	if err := batch.Check(b); err != nil {
		return nil, fmt.Errorf("postgres: reseal enrollments: %w", err)
	}
	idx := make([]int, len(b))
	q := &pgx.Batch{}
	for i := range b {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		return strings.Compare(b[x].UserID+"\x00"+b[x].Provider, b[y].UserID+"\x00"+b[y].Provider)
	})
	for _, i := range idx {
		q.Queue(resealSQL, blob(b[i].State), b[i].UserID, b[i].Provider, b[i].Version)
	}
	written := make([]bool, len(b))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, q)
		for _, i := range idx {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return err
			}
			written[i] = tag.RowsAffected() == 1
		}
		return res.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: reseal enrollments: %w", err)
	}
	return written, nil
}
