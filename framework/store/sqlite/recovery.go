package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.RecoveryStore = (*Store)(nil)

// ReplaceRecoveryCodes swaps the whole set in one transaction, so a user
// never has a mix of old and new codes, nor none at all in between.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	created, err := nanos("now", now)
	if err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, insertRecoverySQL, userID, h, created); err != nil {
			return fmt.Errorf("sqlite: replace recovery codes: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	return nil
}

// DropRecoveryCodesUnlessActive is one statement on the single writer: no
// write of this process or another comes between its check and its drop.
func (s *Store) DropRecoveryCodesUnlessActive(ctx context.Context, userID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?1
		AND NOT EXISTS (SELECT 1 FROM enrollments WHERE user_id = ?1 AND status = 'active')`, userID)
	if err != nil {
		return false, fmt.Errorf("sqlite: drop recovery codes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: drop recovery codes: %w", err)
	}
	return n > 0, nil
}

// insertAuditSQL appends one audit entry (auditArgs's row).
const insertAuditSQL = `INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// IssueRecoveryCodes is ReplaceRecoveryCodes with the audit entry that
// records the new set written in the same transaction, on the one writer:
// both or neither. FirstOnly's check is in that transaction, which holds
// the database's write lock from its BEGIN (IMMEDIATE): no other write,
// of this process or another, comes between the check and the insert.
// ActiveOnly's check is in it too, so no reset's delete comes between.
func (s *Store) IssueRecoveryCodes(ctx context.Context, in framework.RecoveryIssue) (bool, error) {
	created, err := nanos("now", in.Now)
	if err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
	}
	audit, err := auditArgs(in.Audit)
	if err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
	}
	defer tx.Rollback()
	if in.ActiveOnly {
		var active bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM enrollments WHERE user_id = ? AND status = 'active')`, in.UserID).Scan(&active); err != nil {
			return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
		}
		if !active {
			return false, nil
		}
	}
	if in.FirstOnly {
		var has bool
		if err := tx.QueryRowContext(ctx, hasRecoverySQL, in.UserID).Scan(&has); err != nil {
			return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
		}
		if has {
			return false, nil
		}
	} else if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, in.UserID); err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
	}
	for _, h := range in.Hashes {
		if _, err := tx.ExecContext(ctx, insertRecoverySQL, in.UserID, h, created); err != nil {
			return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, insertAuditSQL, audit...); err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: issue recovery codes: %w", err)
	}
	return true, nil
}

// HasRecoveryCode only reads: the code is deleted by the decision that
// uses it (CommitDecision), whose delete decides a race.
func (s *Store) HasRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND hash = ?`, userID, hash).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: check recovery code: %w", err)
	}
	return n == 1, nil
}

func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count recovery codes: %w", err)
	}
	return n, nil
}
