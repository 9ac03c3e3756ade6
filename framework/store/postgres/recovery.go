package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.RecoveryStore = (*Store)(nil)

// recoveryLock is the first key of the two-key advisory locks taken per
// user while replacing recovery codes and while a decision uses one ("rc"
// in ASCII); the second is a hash of the user id (hashtext here,
// recoveryLockOf in a decision, which orders its locks by it, so the two
// do not wait for each other). Two-key locks live apart from one-key ones
// such as the migration lock, so the two cannot collide.
const recoveryLock int32 = 0x7263

// ReplaceRecoveryCodes swaps the whole set in one transaction, so a user
// never has a mix of old and new codes, nor none at all in between.
//
// Under READ COMMITTED a delete does not see rows inserted by a transaction
// that commits after it started, so two replacements racing for one user
// could each keep the other's new codes: the user would end up with both
// sets. The per-user advisory lock runs them one after the other, as
// SQLite's single writer does. Users whose ids hash alike merely wait for
// each other.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	created, err := timestamp("now", now)
	if err != nil {
		return fmt.Errorf("postgres: replace recovery codes: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, recoveryLock, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if len(hashes) == 0 {
			return nil
		}
		// One statement for the whole set, rather than a round trip per code.
		_, err := tx.Exec(ctx, `
			INSERT INTO recovery_codes (user_id, hash, created_at)
			SELECT $1::text, h, $3::timestamptz FROM unnest($2::bytea[]) AS h`,
			userID, hashes, created)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: replace recovery codes: %w", err)
	}
	return nil
}

// HasRecoveryCode only reads: the code is deleted by the decision that
// uses it (CommitDecision). Of two decisions racing with the same code,
// the second's delete waits for the first's row lock, then finds the row
// gone: a conflict, and it writes nothing.
func (s *Store) HasRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND hash = $2`, userID, hash).Scan(&n); err != nil {
		return false, fmt.Errorf("postgres: check recovery code: %w", err)
	}
	return n == 1, nil
}

func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count recovery codes: %w", err)
	}
	return n, nil
}
