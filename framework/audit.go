package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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

// CheckText refuses an entry whose text a store cannot hold as text: a
// field (Details aside, which stores keep as JSON) that is not valid UTF-8
// or holds a NUL byte. PostgreSQL refuses such text (SQLSTATE 22021), and
// since stores commit decisions in groups, one such entry would fail every
// decision committed with it. Every store calls it on each entry before
// the entry joins a transaction, so the refusal is that entry's
// decision's alone. The framework's own inputs are checked before they
// get here (ValidateUserID, CheckClientIP, ...).
func (e AuditEntry) CheckText() error {
	for _, f := range [...]struct{ name, v string }{
		{"event", e.Event}, {"actor", e.Actor}, {"user_id", e.UserID}, {"provider", e.Provider},
		{"audience", string(e.Audience)}, {"outcome", e.Outcome}, {"reason", e.Reason}, {"client_ip", e.ClientIP},
	} {
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return fmt.Errorf("%w: its %s is not valid UTF-8 without NUL bytes", ErrAuditText, f.name)
		}
	}
	return nil
}

// ErrAuditText is in the chain of CheckText's refusal.
var ErrAuditText = errors.New("audit entry a store cannot hold")

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
		return errorf(CodeInternal, pastDeadline(ctx, err), "write audit log")
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
