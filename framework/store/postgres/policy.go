package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.PolicyStore = (*Store)(nil)

// deviceLock is the first key of the two-key advisory lock taken per user
// while storing a remembered device ("rd" in ASCII), like recoveryLock.
const deviceLock int32 = 0x7264

// UseGraceLogin counts and checks the limit in one upsert. Of callers
// racing for the last grace login, the first locks the row; the others
// wait, re-check "used < limit" against the committed row (READ
// COMMITTED) and update nothing, so they get no row back.
func (s *Store) UseGraceLogin(ctx context.Context, userID string, aud framework.Audience, limit int) (int, bool, error) {
	var used int
	if limit >= 1 {
		err := s.pool.QueryRow(ctx, `
			INSERT INTO grace_logins (user_id, audience, used) VALUES ($1, $2, 1)
			ON CONFLICT (user_id, audience) DO UPDATE SET used = grace_logins.used + 1
			WHERE grace_logins.used < $3
			RETURNING used`, userID, string(aud), limit).Scan(&used)
		if err == nil {
			return used, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, false, fmt.Errorf("postgres: use grace login: %w", err)
		}
	}
	err := s.pool.QueryRow(ctx, `SELECT used FROM grace_logins WHERE user_id = $1 AND audience = $2`, userID, string(aud)).Scan(&used)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("postgres: use grace login: %w", err)
	}
	return used, false, nil
}

const deviceColumns = `id, token_hash, user_id, audience, label, created_at, expires_at, provider, trust_token`

// PutDevice inserts and prunes in one transaction. The per-user advisory
// lock runs two puts for one user one after the other (as SQLite's single
// writer does), so neither prunes without seeing the other's row and the
// user never keeps more than keep devices.
func (s *Store) PutDevice(ctx context.Context, d framework.RememberedDevice, keep int) error {
	created, err := timestamp("CreatedAt", d.CreatedAt)
	if err != nil {
		return fmt.Errorf("postgres: put device: %w", err)
	}
	expires, err := timestamp("ExpiresAt", d.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: put device: %w", err)
	}
	if len(d.TokenHash) == 0 {
		return errors.New("postgres: put device: empty token hash")
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, deviceLock, d.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO remembered_devices (`+deviceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			d.ID, d.TokenHash, d.UserID, string(d.Audience), d.Label, created, expires, d.Provider, nullBytes(d.TrustToken)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM remembered_devices WHERE user_id = $1 AND expires_at <= $2`, d.UserID, created); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			DELETE FROM remembered_devices WHERE user_id = $1 AND id NOT IN (
				SELECT id FROM remembered_devices WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)`,
			d.UserID, max(keep, 1))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put device: %w", err)
	}
	return nil
}

func (s *Store) DeviceByHash(ctx context.Context, tokenHash []byte) (framework.RememberedDevice, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM remembered_devices WHERE token_hash = $1`, tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		err = framework.ErrNotFound
	}
	if err != nil {
		return framework.RememberedDevice{}, fmt.Errorf("postgres: get device: %w", err)
	}
	return d, nil
}

func (s *Store) ListDevices(ctx context.Context, userID string) ([]framework.RememberedDevice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM remembered_devices WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list devices: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (framework.RememberedDevice, error) {
		return scanDevice(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list devices: %w", err)
	}
	if list == nil {
		list = []framework.RememberedDevice{}
	}
	return list, nil
}

func (s *Store) DeleteDevice(ctx context.Context, userID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM remembered_devices WHERE user_id = $1 AND id = $2`, userID, id)
	if err != nil {
		return fmt.Errorf("postgres: delete device: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete device: %w", framework.ErrNotFound)
	}
	return nil
}

func (s *Store) DeleteDevices(ctx context.Context, userID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM remembered_devices WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete devices: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanDevice(row pgx.Row) (framework.RememberedDevice, error) {
	var (
		d   framework.RememberedDevice
		aud string
	)
	if err := row.Scan(&d.ID, &d.TokenHash, &d.UserID, &aud, &d.Label, &d.CreatedAt, &d.ExpiresAt, &d.Provider, &d.TrustToken); err != nil {
		return framework.RememberedDevice{}, err
	}
	d.Audience = framework.Audience(aud)
	// pgx returns timestamptz in the local zone; the suite expects UTC.
	d.CreatedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC()
	return d, nil
}

// nullBytes stores an empty token as NULL: no token, rather than an empty one.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
