package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AuditLog = (*Store)(nil)

// maxAuditPage caps one ListAudit answer.
const maxAuditPage = 1000

// AppendAudit returns once the entry is committed: a decision of its own
// (CommitDecision), so it is group-committed with every other write of
// the decision writer.
func (s *Store) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	if err := s.CommitDecision(ctx, framework.DecisionWrite{Audit: []framework.AuditEntry{e}}); err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	return nil
}

func (s *Store) ListAudit(ctx context.Context, q framework.AuditQuery) ([]framework.AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	var since int64
	if !q.Since.IsZero() {
		var err error
		if since, err = nanos("Since", q.Since); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: %w", err)
		}
	}
	rows, err := s.r.QueryContext(ctx, `
		SELECT id, at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details
		FROM audit
		WHERE id > ? AND at >= ? AND (? = '' OR user_id = ?)
		ORDER BY id LIMIT ?`,
		q.AfterID, since, q.UserID, q.UserID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	defer rows.Close()
	out := []framework.AuditEntry{}
	for rows.Next() {
		var (
			e        framework.AuditEntry
			at       int64
			audience string
			details  string
		)
		if err := rows.Scan(&e.ID, &at, &e.Event, &e.Actor, &e.UserID, &e.Provider, &audience, &e.Outcome, &e.Reason, &e.ClientIP, &details); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: %w", err)
		}
		e.Time, e.Audience = time.Unix(0, at).UTC(), framework.Audience(audience)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: entry %d details: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return out, nil
}

// insertAudits inserts a batch's audit entries (auditArgs's rows) as
// multi-row INSERTs (chunked): one statement per chunk instead of one per
// entry, and the AUTOINCREMENT counter (sqlite_sequence) read and written
// once per statement, not per entry. The rows of one VALUES list get
// their ids in order, so the entries keep the order of the decisions, as
// one INSERT each did.
var insertAudits = newChunked(
	"INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details) VALUES ",
	"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "")
