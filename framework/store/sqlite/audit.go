package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twofactor/twofactor/framework"
)

var _ framework.AuditLog = (*Store)(nil)

// maxAuditPage caps one ListAudit answer.
const maxAuditPage = 1000

// AppendAudit returns once the entry is committed. Entries that arrive
// while a commit is in progress are committed together in the next one
// (group commit): every verify writes an entry, and with synchronous=FULL
// one fsync per entry made the audit log the service's bottleneck.
func (s *Store) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	at, err := nanos("Time", e.Time)
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	err = s.audit.append(ctx, []any{at, e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, string(d)})
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	return nil
}

// auditWriter is one goroutine that writes audit entries in batches: it
// takes the first waiting entry, then every other that is already waiting
// (up to maxAuditBatch), and commits them in one transaction. Each caller
// gets its batch's result, so a failed commit still fails every decision
// it carried.
type auditWriter struct {
	mu     sync.RWMutex // held shared by senders, exclusively by stop
	closed bool
	ch     chan auditReq
	done   chan struct{}
	db     *sql.DB
}

type auditReq struct {
	args []any
	res  chan error
}

const maxAuditBatch = 256

func (a *auditWriter) start(db *sql.DB) {
	a.db, a.ch, a.done = db, make(chan auditReq), make(chan struct{})
	go a.loop()
}

func (a *auditWriter) append(ctx context.Context, args []any) error {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return errors.New("store closed")
	}
	req := auditReq{args: args, res: make(chan error, 1)}
	select {
	case a.ch <- req:
	case <-ctx.Done():
		a.mu.RUnlock()
		return ctx.Err()
	}
	a.mu.RUnlock()
	// Not abandoned on ctx: the entry is in a batch and will be written.
	return <-req.res
}

func (a *auditWriter) loop() {
	defer close(a.done)
	for first := range a.ch {
		batch := []auditReq{first}
	gather:
		for len(batch) < maxAuditBatch {
			select {
			case r, ok := <-a.ch:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		err := a.write(batch)
		for _, r := range batch {
			r.res <- err
		}
	}
}

func (a *auditWriter) write(batch []auditReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout+5*time.Second)
	defer cancel()
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range batch {
		if _, err := stmt.ExecContext(ctx, r.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// stop waits for the batch in progress and ends the writer.
func (a *auditWriter) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.ch == nil {
		return
	}
	a.closed = true
	close(a.ch)
	<-a.done
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
