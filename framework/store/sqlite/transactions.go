package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
	sqlite3 "modernc.org/sqlite/lib"

	sqlitedriver "modernc.org/sqlite"
)

func (s *Store) GetTransaction(ctx context.Context, userID, id string) (framework.Transaction, error) {
	tx, err := scanTransaction(s.r.QueryRowContext(ctx, `
		SELECT `+transactionColumns+` FROM transactions WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.Transaction{}, fmt.Errorf("sqlite: get transaction: %w", err)
	}
	return tx, nil
}

// transactionColumns are what scanTransaction reads, in its order.
const transactionColumns = `id, user_id, provider, audience, provider_tx_id, created_at, expires_at, resend_after, session`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanTransaction(row scanner) (framework.Transaction, error) {
	var (
		tx                       framework.Transaction
		audience                 string
		created, expires, resend int64
	)
	if err := row.Scan(&tx.ID, &tx.UserID, &tx.Provider, &audience, &tx.ProviderTxID, &created, &expires, &resend, &tx.Session); err != nil {
		return framework.Transaction{}, err
	}
	tx.Audience = framework.Audience(audience)
	tx.CreatedAt, tx.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if resend != 0 {
		tx.ResendAfter = time.Unix(0, resend).UTC()
	}
	return tx, nil
}

func (s *Store) DeleteTransaction(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete transaction: %w", err)
	}
	return nil
}

// TakeTransaction deletes on the single writer connection: of two takes,
// the second finds no row.
func (s *Store) TakeTransaction(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: take transaction: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: take transaction: %w", err)
	} else if n == 0 {
		return framework.ErrNotFound
	}
	return nil
}

// ExpiredPushes reads on a reader: a settle that committed before is
// seen, and the writer is left to writes.
func (s *Store) ExpiredPushes(ctx context.Context, userID, provider string, aud framework.Audience, now time.Time) ([]framework.Transaction, error) {
	nowNS, err := nanos("now", now)
	if err != nil {
		return nil, fmt.Errorf("sqlite: expired pushes: %w", err)
	}
	return queryAll(ctx, s.r, "expired pushes", func(rows *sql.Rows) (framework.Transaction, error) { return scanTransaction(rows) },
		`SELECT `+transactionColumns+` FROM transactions WHERE `+expiredPushWhere, userID, provider, string(aud), nowNS)
}

// expiredPushWhere selects a user's pushes for a provider and audience
// (the first three arguments) sent and expired at now (the fourth).
const expiredPushWhere = `user_id = ? AND provider = ? AND audience = ? AND expires_at <= ? AND provider_tx_id != '' AND resend_after = 0`

// prunableWhere selects a user's transactions for a provider and audience
// (the first three arguments) expired at the fourth that hold nothing to
// settle: never sent, or code challenges (see ReservePush).
const prunableWhere = `user_id = ? AND provider = ? AND audience = ? AND expires_at <= ? AND (provider_tx_id = '' OR resend_after != 0)`

var _ framework.PushStore = (*Store)(nil)

// ReservePush checks for a pending push, checks and counts the push window,
// and inserts the new transaction, all in one BEGIN IMMEDIATE transaction
// on the single writer connection: a burst of push requests for one user
// is served one at a time, so the second finds the first's transaction.
func (s *Store) ReservePush(ctx context.Context, tx framework.Transaction, now time.Time, limit framework.PushLimit) (framework.PushReservation, error) {
	var res framework.PushReservation
	nowNS, err := nanos("now", now)
	if err != nil {
		return res, fmt.Errorf("sqlite: reserve push: %w", err)
	}
	created, err := nanos("CreatedAt", tx.CreatedAt)
	if err != nil {
		return res, fmt.Errorf("sqlite: reserve push: %w", err)
	}
	expires, err := nanos("ExpiresAt", tx.ExpiresAt)
	if err != nil {
		return res, fmt.Errorf("sqlite: reserve push: %w", err)
	}
	err = s.inTx(ctx, func(q *sql.Tx) error {
		ex, err := scanTransaction(q.QueryRowContext(ctx, `
			SELECT `+transactionColumns+`
			FROM transactions WHERE user_id = ? AND provider = ? AND audience = ? AND expires_at > ?
			ORDER BY created_at DESC LIMIT 1`, tx.UserID, tx.Provider, string(tx.Audience), nowNS))
		// A challenge due for a resend is replaced, but only once the
		// limit lets the new one be sent: a refusal changes nothing.
		var replace string
		switch {
		case err == nil && framework.Resendable(ex, now):
			replace = ex.ID
		case err == nil:
			res.Existing = &ex
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// A push expired unpolled may hold the user's fraud report until
		// its settle deletes it: nothing is sent meanwhile.
		un, err := scanTransaction(q.QueryRowContext(ctx, `SELECT `+transactionColumns+` FROM transactions WHERE `+expiredPushWhere+` LIMIT 1`,
			tx.UserID, tx.Provider, string(tx.Audience), nowNS))
		switch {
		case err == nil:
			res.Unsettled = &un
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var start int64
		var sent int
		err = q.QueryRowContext(ctx, `SELECT window_start, sent FROM push_windows WHERE user_id = ? AND provider = ?`,
			tx.UserID, tx.Provider).Scan(&start, &sent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		windowEnd := time.Unix(0, start).Add(limit.Window)
		if errors.Is(err, sql.ErrNoRows) || !windowEnd.After(now) {
			start, sent = nowNS, 0
		} else if sent >= limit.Max {
			res.RetryAt = windowEnd.UTC()
			return nil
		}
		if replace != "" {
			if _, err := q.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, replace); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM transactions WHERE `+prunableWhere,
			tx.UserID, tx.Provider, string(tx.Audience), now.Add(-framework.PruneAfter).UnixNano()); err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, `
			INSERT INTO transactions (id, user_id, provider, audience, provider_tx_id, created_at, expires_at, session)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			tx.ID, tx.UserID, tx.Provider, string(tx.Audience), tx.ProviderTxID, created, expires, tx.Session)
		var se *sqlitedriver.Error
		if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
			return framework.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, `
			INSERT INTO push_windows (user_id, provider, window_start, sent) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, provider) DO UPDATE SET window_start = excluded.window_start, sent = excluded.sent`,
			tx.UserID, tx.Provider, start, sent+1)
		return err
	})
	if err != nil {
		return framework.PushReservation{}, fmt.Errorf("sqlite: reserve push: %w", err)
	}
	return res, nil
}

// SendTransaction records the provider's id of a push or challenge that
// was sent, its full lifetime and when a challenge may be sent again.
func (s *Store) SendTransaction(ctx context.Context, id, providerTxID string, expiresAt, resendAfter time.Time) error {
	expires, err := nanos("ExpiresAt", expiresAt)
	if err != nil {
		return fmt.Errorf("sqlite: send transaction: %w", err)
	}
	var resend int64
	if !resendAfter.IsZero() {
		if resend, err = nanos("ResendAfter", resendAfter); err != nil {
			return fmt.Errorf("sqlite: send transaction: %w", err)
		}
	}
	r, err := s.w.ExecContext(ctx, `UPDATE transactions SET provider_tx_id = ?, expires_at = ?, resend_after = ? WHERE id = ?`,
		providerTxID, expires, resend, id)
	if err != nil {
		return fmt.Errorf("sqlite: send transaction: %w", err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: send transaction: %w", framework.ErrNotFound)
	}
	return nil
}

func (s *Store) CancelPush(ctx context.Context, tx framework.Transaction) error {
	err := s.inTx(ctx, func(q *sql.Tx) error {
		r, err := q.ExecContext(ctx, `DELETE FROM transactions WHERE id = ?`, tx.ID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil
		}
		_, err = q.ExecContext(ctx, `UPDATE push_windows SET sent = MAX(sent - 1, 0) WHERE user_id = ? AND provider = ?`, tx.UserID, tx.Provider)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: cancel push: %w", err)
	}
	return nil
}
