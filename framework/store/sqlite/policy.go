package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.PolicyStore = (*Store)(nil)

// UseGraceLogin counts and checks the limit in one upsert on the single
// writer connection: the WHERE on DO UPDATE leaves a spent count alone and
// returns no row, so no two callers can take the same last grace login.
func (s *Store) UseGraceLogin(ctx context.Context, userID string, aud framework.Audience, limit int) (int, bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: use grace login: %w", err)
	}
	defer tx.Rollback()
	var used int
	granted := false
	if limit >= 1 {
		err = tx.QueryRowContext(ctx, `
			INSERT INTO grace_logins (user_id, audience, used) VALUES (?, ?, 1)
			ON CONFLICT (user_id, audience) DO UPDATE SET used = grace_logins.used + 1
			WHERE grace_logins.used < ?
			RETURNING used`, userID, string(aud), limit).Scan(&used)
		switch {
		case err == nil:
			granted = true
		case !errors.Is(err, sql.ErrNoRows):
			return 0, false, fmt.Errorf("sqlite: use grace login: %w", err)
		}
	}
	if !granted {
		err = tx.QueryRowContext(ctx, `SELECT used FROM grace_logins WHERE user_id = ? AND audience = ?`, userID, string(aud)).Scan(&used)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, false, fmt.Errorf("sqlite: use grace login: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("sqlite: use grace login: %w", err)
	}
	return used, granted, nil
}

const deviceColumns = `id, token_hash, user_id, audience, label, created_at, expires_at, provider, trust_token`

// PutDevice inserts and prunes in one transaction, so the user's list never
// holds more than keep devices.
func (s *Store) PutDevice(ctx context.Context, d framework.RememberedDevice, keep int) error {
	created, err := nanos("CreatedAt", d.CreatedAt)
	if err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	expires, err := nanos("ExpiresAt", d.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	if len(d.TokenHash) == 0 {
		return errors.New("sqlite: put device: empty token hash")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO remembered_devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.TokenHash, d.UserID, string(d.Audience), d.Label, created, expires, d.Provider, nullBytes(d.TrustToken)); err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM remembered_devices WHERE user_id = ? AND expires_at <= ?`, d.UserID, created); err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM remembered_devices WHERE user_id = ? AND id NOT IN (
			SELECT id FROM remembered_devices WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?)`,
		d.UserID, d.UserID, max(keep, 1)); err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put device: %w", err)
	}
	return nil
}

func (s *Store) DeviceByHash(ctx context.Context, tokenHash []byte) (framework.RememberedDevice, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceColumns+` FROM remembered_devices WHERE token_hash = ?`, tokenHash)
	if err != nil {
		return framework.RememberedDevice{}, fmt.Errorf("sqlite: get device: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return framework.RememberedDevice{}, fmt.Errorf("sqlite: get device: %w", err)
		}
		return framework.RememberedDevice{}, fmt.Errorf("sqlite: get device: %w", framework.ErrNotFound)
	}
	d, err := scanDevice(rows)
	if err != nil {
		return framework.RememberedDevice{}, fmt.Errorf("sqlite: get device: %w", err)
	}
	return d, nil
}

func (s *Store) ListDevices(ctx context.Context, userID string) ([]framework.RememberedDevice, error) {
	return queryAll(ctx, s.r, "list devices", scanDevice,
		`SELECT `+deviceColumns+` FROM remembered_devices WHERE user_id = ? ORDER BY created_at, id`, userID)
}

func (s *Store) DeleteDevice(ctx context.Context, userID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM remembered_devices WHERE user_id = ? AND id = ?`, userID, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete device: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: delete device: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete device: %w", framework.ErrNotFound)
	}
	return nil
}

func (s *Store) DeleteDevices(ctx context.Context, userID string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM remembered_devices WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete devices: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete devices: %w", err)
	}
	return int(n), nil
}

func scanDevice(rows *sql.Rows) (framework.RememberedDevice, error) {
	var (
		d                framework.RememberedDevice
		aud              string
		created, expires int64
	)
	if err := rows.Scan(&d.ID, &d.TokenHash, &d.UserID, &aud, &d.Label, &created, &expires, &d.Provider, &d.TrustToken); err != nil {
		return framework.RememberedDevice{}, err
	}
	d.Audience = framework.Audience(aud)
	d.CreatedAt = time.Unix(0, created).UTC()
	d.ExpiresAt = time.Unix(0, expires).UTC()
	return d, nil
}

// nullBytes stores an empty token as NULL: no token, rather than an empty one.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
