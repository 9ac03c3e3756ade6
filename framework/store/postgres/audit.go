package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AuditLog = (*Store)(nil)

// maxAuditPage caps one ListAudit answer.
const maxAuditPage = 1000

// auditLock is the advisory lock key that orders audit appends: the ASCII
// of "twofaudt".
const auditLock int64 = 0x74776f6661756474

// AppendAudit holds an advisory lock from before the entry takes its id
// until after it commits, so entries become visible in id order.
//
// Without it two replicas could take ids 5 and 6 and commit 6 first; a
// reader paging with AfterID would then see 6, move its cursor past 5, and
// never see 5 once it commits. SQLite cannot do this (one writer at a
// time), and the audit trail is where a silently skipped entry hurts most.
// The lock is taken in a CTE of the same statement: its transaction-scoped
// lock is released only after the implicit transaction has committed and
// become visible. The price is that appends, one short insert each, are
// serialised across the database.
func (s *Store) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	at, err := timestamp("Time", e.Time)
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	// The casts are needed because the values feed a SELECT, where
	// PostgreSQL would otherwise take an untyped parameter as text.
	_, err = s.pool.Exec(ctx, `
		WITH serial AS (SELECT pg_advisory_xact_lock($1))
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		SELECT $2::timestamptz, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text
		FROM serial`,
		auditLock, at, e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, string(d))
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// ListAudit builds its WHERE from the filters given, rather than writing
// "($n = ” OR user_id = $n)": a prepared statement's generic plan cannot
// use an index for such an OR, and the log only grows.
func (s *Store) ListAudit(ctx context.Context, q framework.AuditQuery) ([]framework.AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	where := []string{"id > $1"}
	args := []any{q.AfterID}
	if !q.Since.IsZero() {
		since, err := timestamp("Since", q.Since)
		if err != nil {
			return nil, fmt.Errorf("postgres: list audit: %w", err)
		}
		args = append(args, since)
		where = append(where, "at >= $"+strconv.Itoa(len(args)))
	}
	if q.UserID != "" {
		args = append(args, q.UserID)
		where = append(where, "user_id = $"+strconv.Itoa(len(args)))
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details
		FROM audit
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY id LIMIT $`+strconv.Itoa(len(args)),
		args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (framework.AuditEntry, error) {
		var (
			e        framework.AuditEntry
			at       time.Time
			audience string
			details  string
		)
		if err := row.Scan(&e.ID, &at, &e.Event, &e.Actor, &e.UserID, &e.Provider, &audience, &e.Outcome, &e.Reason, &e.ClientIP, &details); err != nil {
			return framework.AuditEntry{}, err
		}
		e.Time, e.Audience = at.UTC(), framework.Audience(audience)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return framework.AuditEntry{}, fmt.Errorf("entry %d details: %w", e.ID, err)
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	if out == nil {
		out = []framework.AuditEntry{}
	}
	return out, nil
}
