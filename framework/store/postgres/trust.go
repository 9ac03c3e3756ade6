package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.TrustTokenScanner = (*Store)(nil)

// ScanTrustTokens pages through the devices with a trust token by their
// primary key (collation "C": the order of Go's string comparison).
func (s *Store) ScanTrustTokens(ctx context.Context, afterID string, limit int) ([]framework.RememberedDevice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM remembered_devices
		WHERE id > $1 AND trust_token IS NOT NULL ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan trust tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (framework.RememberedDevice, error) {
		return scanDevice(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: scan trust tokens: %w", err)
	}
	if out == nil {
		out = []framework.RememberedDevice{}
	}
	return out, nil
}

// ResealTrustTokens compares and swaps every token of the page in one
// statement, hence one transaction, and learns from RETURNING which rows
// it wrote.
func (s *Store) ResealTrustTokens(ctx context.Context, b []framework.TrustTokenReseal) ([]bool, error) {
	if err := framework.CheckTrustReseals(b); err != nil {
		return nil, fmt.Errorf("postgres: reseal trust tokens: %w", err)
	}
	ids, olds, news := make([]string, len(b)), make([][]byte, len(b)), make([][]byte, len(b))
	for i, r := range b {
		ids[i], olds[i], news[i] = r.DeviceID, r.Old, r.New
	}
	rows, err := s.pool.Query(ctx, `
		UPDATE remembered_devices d SET trust_token = b.new
		FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS b(id, old, new)
		WHERE d.id = b.id AND d.trust_token = b.old
		RETURNING d.id`, ids, olds, news)
	if err != nil {
		return nil, fmt.Errorf("postgres: reseal trust tokens: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: reseal trust tokens: %w", err)
	}
	set := make(map[string]bool, len(done))
	for _, id := range done {
		set[id] = true
	}
	written := make([]bool, len(b))
	for i, r := range b {
		written[i] = set[r.DeviceID]
	}
	return written, nil
}
