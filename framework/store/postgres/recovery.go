package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.RecoveryStore = (*Store)(nil)

// recoveryLock is the first key of the two-key advisory lock a
// transaction takes per user before it deletes any of the user's recovery
// codes: a replacement of the set and a decision using a code ("rc" in
// ASCII). The second is recoveryLockOf the user. Two-key locks live apart
// from one-key ones such as the migration lock, so the two cannot collide.
const recoveryLock int32 = 0x7263

// recoveryLockOf is the second key of a user's recovery lock: an FNV-1a
// hash of the user id, computed here rather than by hashtext so that a
// decision batch can take its users' locks in the order of their keys.
// Two users may share one; that only makes one wait for the other.
func recoveryLockOf(userID string) int32 {
	h := fnv.New32a()
	h.Write([]byte(userID))
	return int32(h.Sum32())
}

// replaceLockSQL takes the user's recovery lock ($1, $3) for a
// replacement, then the one earlier releases took alone, keyed by
// hashtext ($1, hashtext($2)): a replica of an older release
// replacing codes under that lock alone thus still waits for (or is
// waited for by) this one, so two replacements of one user on replicas of
// different releases during a rolling upgrade cannot leave both sets. (An
// older replica's replacement and a decision of any release do not wait
// for each other, as before.) Drop the second lock once no release before
// this one can run against the database. The target list is evaluated in
// order, so every replica takes the two in one order.
const replaceLockSQL = `SELECT pg_advisory_xact_lock($1::int4, $3::int4), pg_advisory_xact_lock($1::int4, hashtext($2))`

// ReplaceRecoveryCodes swaps the whole set in one transaction, so a user
// never has a mix of old and new codes, nor none at all in between.
//
// It first takes the user's recovery lock, as a decision using a code
// does before its delete (see writeCareful), so that the two run one
// after the other, as under SQLite's single writer. Otherwise the two
// deletes could each row-lock some of the user's codes and wait for the
// other's: a batch deletes in hash order, a replacement in whatever order
// the rows are read, and the server ends such a deadlock by failing one
// of them. Two replacements also run one after the other: under READ
// COMMITTED a delete does not see rows inserted by a transaction that
// commits after it started, so two racing for one user could each keep
// the other's new codes. Users whose ids hash alike merely wait for each
// other.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	created, err := timestamp("now", now)
	if err != nil {
		return fmt.Errorf("postgres: replace recovery codes: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, replaceLockSQL, recoveryLock, userID, recoveryLockOf(userID)); err != nil {
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

// DropRecoveryCodesUnlessActive takes the user's recovery lock, which
// every write of the user's codes takes (IssueRecoveryCodes's FirstOnly
// check included), before its DELETE: under READ COMMITTED that statement
// sees every activation committed before it began. An activation that
// commits later finds, at its first-codes issue (behind the same lock),
// this drop committed and no codes: it issues a fresh set.
func (s *Store) DropRecoveryCodesUnlessActive(ctx context.Context, userID string) (bool, error) {
	dropped := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, replaceLockSQL, recoveryLock, userID, recoveryLockOf(userID)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1
			AND NOT EXISTS (SELECT 1 FROM enrollments WHERE user_id = $1 AND status = 'active')`, userID)
		dropped = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: drop recovery codes: %w", err)
	}
	return dropped, nil
}

// IssueRecoveryCodes is ReplaceRecoveryCodes with the audit entry that
// records the new set written in the same transaction: both or neither.
// The user's recovery lock is taken first and auditLock last, the order
// a decision batch takes them in (writeCareful), so the two never wait
// for each other in a cycle; auditLock is held until the commit, as every
// audit insert holds it (see AppendAudit).
//
// FirstOnly is safe across replicas: its check runs after the user's
// recovery lock is taken, which every write of the user's codes takes
// (a replacement, an issue, a decision using a code), and under READ
// COMMITTED a statement sees every transaction that committed before it
// began, so the check sees any set issued by a transaction that held the
// lock before this one. Of first sets issued at once on any replicas,
// one finds none and writes; the others find its codes and write nothing.
//
// ActiveOnly's check runs after the same lock: a reset's delete of the
// user's last enrollment that committed before it is seen, and the set is
// not written; one that commits after it is followed by the reset's
// DropRecoveryCodesUnlessActive, which waits for this commit behind the
// lock and then drops the set with the rest.
func (s *Store) IssueRecoveryCodes(ctx context.Context, in framework.RecoveryIssue) (bool, error) {
	created, err := timestamp("now", in.Now)
	if err != nil {
		return false, fmt.Errorf("postgres: issue recovery codes: %w", err)
	}
	row, err := auditRowOf(in.Audit)
	if err != nil {
		return false, fmt.Errorf("postgres: issue recovery codes: %w", err)
	}
	issued := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, replaceLockSQL, recoveryLock, in.UserID, recoveryLockOf(in.UserID)); err != nil {
			return err
		}
		if in.ActiveOnly {
			var active bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enrollments WHERE user_id = $1 AND status = 'active')`, in.UserID).Scan(&active); err != nil {
				return err
			}
			if !active {
				return nil // commits nothing but the locks' release
			}
		}
		if in.FirstOnly {
			var has bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = $1)`, in.UserID).Scan(&has); err != nil {
				return err
			}
			if has {
				return nil // commits nothing but the locks' release
			}
		} else if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, in.UserID); err != nil {
			return err
		}
		issued = true
		if len(in.Hashes) > 0 {
			if _, err := tx.Exec(ctx, `
				INSERT INTO recovery_codes (user_id, hash, created_at)
				SELECT $1::text, h, $3::timestamptz FROM unnest($2::bytea[]) AS h`,
				in.UserID, in.Hashes, created); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, auditLockSQL, auditLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, auditSQL, row.args()...)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: issue recovery codes: %w", err)
	}
	return issued, nil
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
