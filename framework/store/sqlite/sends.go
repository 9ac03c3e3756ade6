package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// CountSends checks and counts the send windows of keys in one BEGIN
// IMMEDIATE transaction on the single writer connection: a burst is
// served one at a time, so the limit holds under it. The windows are the
// push_windows rows ReservePush counts in.
func (s *Store) CountSends(ctx context.Context, keys []framework.SendKey, now time.Time, limit framework.PushLimit) (time.Time, error) {
	nowNS, err := nanos("now", now)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: count sends: %w", err)
	}
	var retry time.Time
	err = s.inTx(ctx, func(q *sql.Tx) error {
		starts := make([]int64, len(keys))
		sent := make([]int, len(keys))
		for i, k := range keys {
			err := q.QueryRowContext(ctx, `SELECT window_start, sent FROM push_windows WHERE user_id = ? AND provider = ?`,
				k.Subject, k.Provider).Scan(&starts[i], &sent[i])
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			end := time.Unix(0, starts[i]).Add(limit.Window)
			switch {
			case errors.Is(err, sql.ErrNoRows) || !end.After(now) || sent[i] == 0:
				starts[i], sent[i] = nowNS, 0
			case sent[i] >= limit.Max && end.After(retry):
				retry = end.UTC()
			}
		}
		if !retry.IsZero() {
			return nil // a full window: nothing counted
		}
		for i, k := range keys {
			if _, err := q.ExecContext(ctx, `
				INSERT INTO push_windows (user_id, provider, window_start, sent) VALUES (?, ?, ?, ?)
				ON CONFLICT (user_id, provider) DO UPDATE SET window_start = excluded.window_start, sent = excluded.sent`,
				k.Subject, k.Provider, starts[i], sent[i]+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: count sends: %w", err)
	}
	return retry, nil
}
