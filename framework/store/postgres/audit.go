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

// AppendAudit commits one entry as a decision of its own (CommitDecision):
// group-committed with this replica's other decisions.
//
// Audit entries are inserted under an advisory lock held from before the
// entries take their ids until after they commit, so they become visible
// in id order. Without it two replicas could take ids 5 and 6 and commit 6
// first; a reader paging with AfterID would then see 6, move its cursor
// past 5, and never see 5 once it commits. SQLite cannot do this (one
// writer at a time), and the audit trail is where a silently skipped entry
// hurts most. The price is that audit writes are serialised across the
// database: one batch of a replica at a time, not one entry.
func (s *Store) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Audit: []framework.AuditEntry{e}}); err != nil {
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
