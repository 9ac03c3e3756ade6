package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofactor/twofactor/framework"
)

// foreignKeyViolation is SQLSTATE 23503.
const foreignKeyViolation = "23503"

// GetTransaction matches the user as well as the id, so a transaction id
// learnt by another user finds nothing.
func (s *Store) GetTransaction(ctx context.Context, userID, id string) (framework.Transaction, error) {
	tx, err := scanTransaction(s.pool.QueryRow(ctx, `
		SELECT `+transactionColumns+` FROM transactions WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Transaction{}, fmt.Errorf("postgres: get transaction: %w", err)
	}
	return tx, nil
}

// transactionColumns are what scanTransaction reads, in its order.
const transactionColumns = `id, user_id, provider, audience, provider_tx_id, created_at, expires_at, resend_after, session`

func scanTransaction(row pgx.Row) (framework.Transaction, error) {
	var (
		tx       framework.Transaction
		audience string
		resend   *time.Time
	)
	if err := row.Scan(&tx.ID, &tx.UserID, &tx.Provider, &audience, &tx.ProviderTxID, &tx.CreatedAt, &tx.ExpiresAt, &resend, &tx.Session); err != nil {
		return framework.Transaction{}, err
	}
	tx.Audience = framework.Audience(audience)
	tx.CreatedAt, tx.ExpiresAt = tx.CreatedAt.UTC(), tx.ExpiresAt.UTC()
	if resend != nil {
		tx.ResendAfter = resend.UTC()
	}
	return tx, nil
}

func (s *Store) DeleteTransaction(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete transaction: %w", err)
	}
	return nil
}

// TakeTransaction relies on DELETE's row lock: of two takes, across
// replicas too, the second waits for the first's commit and then finds
// no row.
func (s *Store) TakeTransaction(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: take transaction: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return framework.ErrNotFound
	}
	return nil
}

// ExpiredPushes reads what committed before it: a push a settle deleted
// (with its answer, SettlePush) is not returned.
func (s *Store) ExpiredPushes(ctx context.Context, userID, provider string, aud framework.Audience, now time.Time) ([]framework.Transaction, error) {
	ts, err := timestamp("now", now)
	if err != nil {
		return nil, fmt.Errorf("postgres: expired pushes: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+transactionColumns+` FROM transactions WHERE `+expiredPushWhere,
		userID, provider, string(aud), ts)
	if err != nil {
		return nil, fmt.Errorf("postgres: expired pushes: %w", err)
	}
	defer rows.Close()
	var out []framework.Transaction
	for rows.Next() {
		tx, err := scanTransaction(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: expired pushes: %w", err)
		}
		out = append(out, tx)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: expired pushes: %w", err)
	}
	return out, nil
}

// expiredPushWhere selects a user's pushes for a provider and audience
// ($1 to $3) sent and expired at $4.
const expiredPushWhere = `user_id = $1 AND provider = $2 AND audience = $3 AND expires_at <= $4 AND provider_tx_id <> '' AND resend_after IS NULL`

// prunableWhere selects a user's transactions for a provider and audience
// ($1 to $3) expired at $4 that hold nothing to settle: never sent, or
// code challenges (see ReservePush).
const prunableWhere = `user_id = $1 AND provider = $2 AND audience = $3 AND expires_at <= $4 AND (provider_tx_id = '' OR resend_after IS NOT NULL)`

var _ framework.PushStore = (*Store)(nil)

// ReservePush serializes a user's push requests for one provider on their
// push_windows row (locked until commit): the second of a burst waits, then
// finds the first's transaction.
func (s *Store) ReservePush(ctx context.Context, t framework.Transaction, now time.Time, limit framework.PushLimit) (framework.PushReservation, error) {
	var res framework.PushReservation
	created, err := timestamp("CreatedAt", t.CreatedAt)
	if err != nil {
		return res, fmt.Errorf("postgres: reserve push: %w", err)
	}
	expires, err := timestamp("ExpiresAt", t.ExpiresAt)
	if err != nil {
		return res, fmt.Errorf("postgres: reserve push: %w", err)
	}
	// Every push request waits for this reservation, as a login does for
	// its attempt's (reserveAttempt).
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The no-op update locks the row and returns it, in one statement.
		var (
			start time.Time
			sent  int
		)
		if err := tx.QueryRow(ctx, `
			INSERT INTO push_windows (user_id, provider, window_start, sent) VALUES ($1, $2, $3, 0)
			ON CONFLICT (user_id, provider) DO UPDATE SET sent = push_windows.sent
			RETURNING window_start, sent`, t.UserID, t.Provider, now.UTC()).Scan(&start, &sent); err != nil {
			return err
		}
		ex, err := scanTransaction(tx.QueryRow(ctx, `
			SELECT `+transactionColumns+`
			FROM transactions WHERE user_id = $1 AND provider = $2 AND audience = $3 AND expires_at > $4
			ORDER BY created_at DESC LIMIT 1`, t.UserID, t.Provider, string(t.Audience), now.UTC()))
		// A challenge due for a resend is replaced, but only once the
		// limit lets the new one be sent: a refusal changes nothing.
		var replace string
		switch {
		case err == nil && framework.Resendable(ex, now):
			replace = ex.ID
		case err == nil:
			res.Existing = &ex
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		// A push expired unpolled may hold the user's fraud report until
		// its settle deletes it (SettlePush, which commits the deletion
		// with the answer's lockout): nothing is sent meanwhile. A settle
		// that commits after this read finds the push still here.
		un, err := scanTransaction(tx.QueryRow(ctx, `SELECT `+transactionColumns+` FROM transactions WHERE `+expiredPushWhere+` LIMIT 1`,
			t.UserID, t.Provider, string(t.Audience), now.UTC()))
		switch {
		case err == nil:
			res.Unsettled = &un
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if windowEnd := start.Add(limit.Window); !windowEnd.After(now) {
			start, sent = now.UTC(), 0
		} else if sent >= limit.Max {
			res.RetryAt = windowEnd.UTC()
			return nil
		}
		if replace != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, replace); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM transactions WHERE `+prunableWhere,
			t.UserID, t.Provider, string(t.Audience), now.Add(-framework.PruneAfter).UTC()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO transactions (id, user_id, provider, audience, provider_tx_id, created_at, expires_at, session)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.UserID, t.Provider, string(t.Audience), t.ProviderTxID, created, expires, t.Session)
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == foreignKeyViolation {
			return framework.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE push_windows SET window_start = $1, sent = $2 WHERE user_id = $3 AND provider = $4`,
			start, sent+1, t.UserID, t.Provider)
		return err
	})
	if err != nil {
		return framework.PushReservation{}, fmt.Errorf("postgres: reserve push: %w", err)
	}
	return res, nil
}

// SendTransaction records the provider's id of a push or challenge that
// was sent, its full lifetime and when a challenge may be sent again.
func (s *Store) SendTransaction(ctx context.Context, id, providerTxID string, expiresAt, resendAfter time.Time) error {
	expires, err := timestamp("ExpiresAt", expiresAt)
	if err != nil {
		return fmt.Errorf("postgres: send transaction: %w", err)
	}
	var resend *time.Time
	if !resendAfter.IsZero() {
		r, err := timestamp("ResendAfter", resendAfter)
		if err != nil {
			return fmt.Errorf("postgres: send transaction: %w", err)
		}
		resend = &r
	}
	tag, err := s.pool.Exec(ctx, `UPDATE transactions SET provider_tx_id = $1, expires_at = $2, resend_after = $3 WHERE id = $4`,
		providerTxID, expires, resend, id)
	if err != nil {
		return fmt.Errorf("postgres: send transaction: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: send transaction: %w", framework.ErrNotFound)
	}
	return nil
}

func (s *Store) CancelPush(ctx context.Context, t framework.Transaction) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM transactions WHERE id = $1`, t.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE push_windows SET sent = GREATEST(sent - 1, 0) WHERE user_id = $1 AND provider = $2`, t.UserID, t.Provider)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: cancel push: %w", err)
	}
	return nil
}
