package framework

import (
	"context"
	"time"
)

// Audit events.
const (
	EventEnrollBegin    = "enroll.begin"
	EventEnrollConfirm  = "enroll.confirm"
	EventVerify         = "verify"
	EventReset          = "enrollment.reset"
	EventLockout        = "lockout"
	EventFailmode       = "failmode"
	EventConfigReload   = "config.reload"
	EventRecoveryIssued = "recovery.issued"
)

// AuditEntry is one decision or change, as written to the audit log. It
// never holds a secret, a code or provider state.
type AuditEntry struct {
	ID       int64 // assigned by the store, increasing
	Time     time.Time
	Event    string
	Actor    string // the API key's name, or "cli"
	UserID   string
	Provider string
	Audience Audience
	Outcome  string
	Reason   string
	ClientIP string
	Details  map[string]string
}

// AuditQuery selects audit entries, oldest first.
type AuditQuery struct {
	UserID  string    // "" for every user
	Since   time.Time // entries at or after; zero for all
	AfterID int64     // entries with a larger ID: the paging cursor
	Limit   int       // at most this many; the store caps it
}

// AuditLog persists the audit trail. Stores implement it beside Store; it
// is append-only: nothing in the framework updates or deletes an entry.
type AuditLog interface {
	AppendAudit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

type actorKey struct{}

// WithActor records who is acting (an API key's name) for the audit log.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

func actorOf(ctx context.Context) string {
	if s, ok := ctx.Value(actorKey{}).(string); ok {
		return s
	}
	return "embedded"
}

// audit writes one entry. A failure is returned: a security decision that
// cannot be recorded is not made (the caller fails closed).
func (f *Framework) audit(ctx context.Context, e AuditEntry) error {
	if err := f.store.AppendAudit(ctx, f.stamp(ctx, e)); err != nil {
		f.log.Error("audit write failed", "event", e.Event, "error", err)
		return errorf(CodeInternal, err, "write audit log")
	}
	return nil
}

// stamp sets an entry's time and actor.
func (f *Framework) stamp(ctx context.Context, e AuditEntry) AuditEntry {
	e.Time = f.now().UTC()
	e.Actor = actorOf(ctx)
	return e
}

// Audit lists audit entries.
func (f *Framework) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	list, err := f.store.ListAudit(ctx, q)
	if err != nil {
		return nil, errorf(CodeInternal, err, "read audit log")
	}
	return list, nil
}

// RecordConfigReload audits a configuration change the host applied or
// refused.
func (f *Framework) RecordConfigReload(ctx context.Context, outcome, reason string, details map[string]string) error {
	return f.audit(ctx, AuditEntry{Event: EventConfigReload, Outcome: outcome, Reason: reason, Details: details})
}
