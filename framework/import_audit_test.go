package framework_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
)

// auditWrites is the SQLite store counting the audit writes made apart
// from a bulk insert (AppendAudit and CommitDecision; an import writes
// nothing else through them).
type auditWrites struct {
	*sqlite.Store
	n atomic.Int64
}

func (s *auditWrites) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	s.n.Add(1)
	return s.Store.AppendAudit(ctx, e)
}

func (s *auditWrites) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	s.n.Add(1)
	return s.Store.CommitDecision(ctx, d)
}

// importAudit is every import audit entry, as "outcome user count/skipped".
func importAudit(t *testing.T, fw *framework.Framework) []string {
	t.Helper()
	entries, err := fw.Audit(t.Context(), framework.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range entries {
		if a.Event == framework.EventImport {
			out = append(out, fmt.Sprintf("%s %s %s/%s", a.Outcome, a.UserID, a.Details["count"], a.Details["skipped"]))
		}
	}
	return out
}

// TestImportAuditWithBatch: an import's audit entries, the batch's and one
// per user it skipped (SkipExisting), are written in the batch's own
// transaction: no write of their own (a resumed import of a large file
// that overlaps the store paid one per skip), and all or nothing with the
// batch. An audit log that refuses the entries leaves the batch unwritten
// (before, the batch was stored and the skips went unaudited); a batch
// that fails leaves no entry; once both work, every entry is there.
func TestImportAuditWithBatch(t *testing.T) {
	e := newEnv(t, inProcess())
	store := &auditWrites{Store: e.store}
	fw := startFramework(t, store, e.key, e.clk, 0, inProcess())
	e.enroll(t, "carol")
	e.begin(t, "frank")
	batch := importBatch(t, "dave", "carol", "erin", "frank")
	skip := framework.ImportOptions{SkipExisting: true}
	stored := func(user string) bool {
		t.Helper()
		list, err := fw.Enrollments(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return len(list) > 0
	}

	for _, fault := range []struct {
		name          string
		event, reason string
	}{
		{"audit refused", "BEFORE INSERT ON audit", "audit log unavailable"},
		{"insert refused", "BEFORE INSERT ON enrollments WHEN NEW.user_id = 'erin'", "disk full"},
	} {
		restore := sqliteTrigger(t, e.db, "fault", fault.event, fault.reason)
		if res, err := fw.ImportEnrollmentsWith(t.Context(), "totp", batch, skip); err == nil {
			t.Errorf("%s: import = %+v, want an error", fault.name, res)
		}
		restore()
		if stored("dave") || stored("erin") {
			t.Errorf("%s: the batch was written (dave %v, erin %v)", fault.name, stored("dave"), stored("erin"))
		}
		if got := importAudit(t, fw); len(got) != 0 {
			t.Errorf("%s: import audit entries %q, want none", fault.name, got)
		}
	}

	store.n.Store(0)
	res, err := fw.ImportEnrollmentsWith(t.Context(), "totp", batch, skip)
	if err != nil || res.Imported != 2 || !slices.Equal(res.Skipped, []string{"carol", "frank"}) {
		t.Fatalf("import = %+v, %v; want dave and erin imported, carol and frank skipped", res, err)
	}
	if n := store.n.Load(); n != 0 {
		t.Errorf("the import made %d audit write(s) of their own, want none (its entries go with the batch)", n)
	}
	want := []string{"imported  2/2", "skipped carol /", "skipped frank /"}
	if got := importAudit(t, fw); !slices.Equal(got, want) {
		t.Errorf("import audit entries %q, want %q", got, want)
	}
	if !stored("dave") || !stored("erin") {
		t.Error("dave and erin were not imported")
	}
}
