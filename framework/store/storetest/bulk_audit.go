package storetest

// InsertEnrollmentsAudited: an import's batch and its audit entries, in
// one transaction.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// importEntries are audit entries as an import writes them: the batch's,
// then one per skipped user.
func importEntries(first string, skipped ...string) []framework.AuditEntry {
	out := []framework.AuditEntry{{Time: at(time.Minute), Event: framework.EventImport, Actor: "cli", Provider: "totp",
		Outcome: "imported", Details: map[string]string{"first_user": first}}}
	for _, u := range skipped {
		out = append(out, framework.AuditEntry{Time: at(time.Minute), Event: framework.EventImport, Actor: "cli", UserID: u,
			Provider: "totp", Outcome: "skipped", Reason: "already_enrolled"})
	}
	return out
}

// auditSummary is every audit entry of the store, as "outcome user first".
func auditSummary(t *testing.T, s framework.Store) []string {
	t.Helper()
	list, err := s.ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range list {
		out = append(out, fmt.Sprintf("%s %s %s", e.Outcome, e.UserID, e.Details["first_user"]))
	}
	return out
}

// testBulkAudited: the entries are written, in order, with the batch, and
// alone when no row is left to insert; a batch that fails (a stored key,
// an entry the store cannot hold) writes neither rows nor entries.
func testBulkAudited(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	active(t, s, "carol", "totp")

	clash := []framework.Enrollment{imported("dave", "totp", base), imported("carol", "totp", base)}
	wantExists(t, b.InsertEnrollmentsAudited(t.Context(), clash, importEntries("dave")), "carol", "totp", false)
	bad := importEntries("dave", "carol")
	bad[1].Reason = "nul\x00byte"
	if err := b.InsertEnrollmentsAudited(t.Context(), clash[:1], bad); err == nil {
		t.Error("an audit entry holding a NUL was accepted")
	}
	wantAbsent(t, s, "totp", "dave")
	if got := auditSummary(t, s); len(got) != 0 {
		t.Errorf("failed batches left audit entries %q", got)
	}

	if err := b.InsertEnrollmentsAudited(t.Context(), clash[:1], importEntries("dave", "carol")); err != nil {
		t.Fatalf("InsertEnrollmentsAudited: %v", err)
	}
	mustGet(t, s, "dave", "totp")
	// Everyone skipped: the entries alone.
	if err := b.InsertEnrollmentsAudited(t.Context(), nil, importEntries("carol", "carol", "dave")); err != nil {
		t.Fatalf("InsertEnrollmentsAudited with no rows: %v", err)
	}
	want := []string{"imported  dave", "skipped carol ", "imported  carol", "skipped carol ", "skipped dave "}
	if got := auditSummary(t, s); !slices.Equal(got, want) {
		t.Errorf("audit entries %q, want %q", got, want)
	}
	if err := b.InsertEnrollmentsAudited(t.Context(), nil, nil); err != nil {
		t.Errorf("nothing at all: %v", err)
	}
}

// testBulkAuditedBurst: imports, each a batch of its own users with its
// entries, and audit appends (as logins write them), all at once. Every
// one commits (none waits on another in a cycle: the audit lock is taken
// last by both), and the log holds each import's entries together with
// its rows, in id order.
func testBulkAuditedBurst(t *testing.T, s framework.Store) {
	b := capability[framework.BulkEnrollmentWriter](t, s)
	_, errs := burst.Run2(concurrency, func(i int) (struct{}, error) {
		user := fmt.Sprintf("user%02d", i)
		if i%2 == 0 {
			return struct{}{}, s.AppendAudit(t.Context(), framework.AuditEntry{Time: base, Event: framework.EventVerify, UserID: user, Outcome: "allow"})
		}
		batch := []framework.Enrollment{imported(user, "totp", base), imported(user+"b", "totp", base)}
		return struct{}{}, b.InsertEnrollmentsAudited(t.Context(), batch, importEntries(user, user+"c"))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	list, err := s.ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if want := concurrency/2 + concurrency/2*2; len(list) != want {
		t.Errorf("%d audit entries, want %d", len(list), want)
	}
	for i, e := range list {
		if i > 0 && e.ID <= list[i-1].ID {
			t.Errorf("entry %d: id %d after %d", i, e.ID, list[i-1].ID)
		}
		if e.Outcome == "imported" {
			user := e.Details["first_user"]
			if i+1 >= len(list) || list[i+1].UserID != user+"c" {
				t.Errorf("%s's import entry is not followed by its skip", user)
			}
			mustGet(t, s, user+"b", "totp")
		}
	}
}
