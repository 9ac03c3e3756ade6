package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

// CountSends locks the push_windows row of every key (creating it) and
// counts one send in each unless one is full, in one transaction: a burst
// on any number of replicas is served one at a time per row. The rows are
// locked in one order (subject, then provider), so two counts over
// overlapping keys wait for each other instead of deadlocking.
func (s *Store) CountSends(ctx context.Context, keys []framework.SendKey, now time.Time, limit framework.PushLimit) (time.Time, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b framework.SendKey) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Provider, b.Provider))
	})
	keys = slices.Compact(keys)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var retry time.Time
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		retry = time.Time{} // a retried transaction starts over
		starts := make([]time.Time, len(keys))
		sent := make([]int, len(keys))
		for i, k := range keys {
			// The no-op update locks the row and returns it, in one statement.
			if err := tx.QueryRow(ctx, `
				INSERT INTO push_windows (user_id, provider, window_start, sent) VALUES ($1, $2, $3, 0)
				ON CONFLICT (user_id, provider) DO UPDATE SET sent = push_windows.sent
				RETURNING window_start, sent`, k.Subject, k.Provider, now.UTC()).Scan(&starts[i], &sent[i]); err != nil {
				return err
			}
			end := starts[i].Add(limit.Window)
			switch {
			case !end.After(now) || sent[i] == 0: // passed, or never counted in
				starts[i], sent[i] = now.UTC(), 0
			case sent[i] >= limit.Max && end.After(retry):
				retry = end.UTC()
			}
		}
		if !retry.IsZero() {
			return nil // a full window: nothing counted (the rows created hold 0)
		}
		for i, k := range keys {
			if _, err := tx.Exec(ctx, `UPDATE push_windows SET window_start = $1, sent = $2 WHERE user_id = $3 AND provider = $4`,
				starts[i], sent[i]+1, k.Subject, k.Provider); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: count sends: %w", err)
	}
	return retry, nil
}
