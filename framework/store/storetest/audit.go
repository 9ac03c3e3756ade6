package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

func testAuditRoundTrip(t *testing.T, s framework.Store) {
	a := framework.AuditLog(s)
	in := []framework.AuditEntry{
		{Time: base, Event: framework.EventEnrollBegin, Actor: "panel", UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Outcome: "pending"},
		{Time: at(time.Second), Event: framework.EventVerify, Actor: "panel", UserID: "bob", Provider: "totp", Outcome: "deny", Reason: "invalid_code", ClientIP: "192.0.2.7"},
		{Time: at(2 * time.Second), Event: framework.EventVerify, Actor: "panel", UserID: "alice", Provider: "totp", Outcome: "allow", Details: map[string]string{"step_offset": "-1"}},
	}
	for _, e := range in {
		if err := a.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := a.ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("ListAudit = %d entries, want 3", len(all))
	}
	for i, got := range all {
		want := in[i]
		if i > 0 && got.ID <= all[i-1].ID {
			t.Errorf("ids not increasing: %d after %d", got.ID, all[i-1].ID)
		}
		if timeDiff(got.Time, want.Time) != "" || got.Event != want.Event || got.Actor != want.Actor ||
			got.UserID != want.UserID || got.Provider != want.Provider || got.Audience != want.Audience || got.Outcome != want.Outcome ||
			got.Reason != want.Reason || got.ClientIP != want.ClientIP || (len(want.Details) > 0 && !reflect.DeepEqual(got.Details, want.Details)) {
			t.Errorf("entry %d = %+v, want %+v", i, got, want)
		}
	}
	alice, _ := a.ListAudit(t.Context(), framework.AuditQuery{UserID: "alice"})
	if len(alice) != 2 || alice[0].UserID != "alice" || alice[1].UserID != "alice" {
		t.Errorf("by user: %+v", alice)
	}
	since, _ := a.ListAudit(t.Context(), framework.AuditQuery{Since: at(time.Second)})
	if len(since) != 2 || since[0].Event != framework.EventVerify {
		t.Errorf("since: %+v", since)
	}
	page, _ := a.ListAudit(t.Context(), framework.AuditQuery{Limit: 1})
	next, _ := a.ListAudit(t.Context(), framework.AuditQuery{Limit: 1, AfterID: page[0].ID})
	if len(page) != 1 || len(next) != 1 || next[0].ID != all[1].ID {
		t.Errorf("paging: %+v then %+v", page, next)
	}
}

// testAuditSurvivesReset: the trail of a user outlives their enrollment.
func testAuditSurvivesReset(t *testing.T, s framework.Store) {
	a := framework.AuditLog(s)
	active(t, s, "alice", "totp")
	if err := a.AppendAudit(t.Context(), framework.AuditEntry{Time: base, Event: framework.EventVerify, UserID: "alice", Provider: "totp"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "alice", "totp"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.ListAudit(t.Context(), framework.AuditQuery{UserID: "alice"}); len(got) != 1 {
		t.Errorf("audit after reset: %+v", got)
	}
}

// testAuditConcurrent: entries appended at once (a store may commit them
// together) are all there, once each, in increasing id order.
func testAuditConcurrent(t *testing.T, s framework.Store) {
	a := framework.AuditLog(s)
	const n = 50
	for _, err := range burst.Run(n, func(i int) error {
		e := framework.AuditEntry{Time: at(time.Duration(i) * time.Second), Event: framework.EventVerify, UserID: fmt.Sprintf("user%02d", i)}
		return a.AppendAudit(t.Context(), e)
	}) {
		if err != nil {
			t.Error(err)
		}
	}
	all, err := a.ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if i > 0 && e.ID <= all[i-1].ID {
			t.Errorf("ids not increasing at %d", i)
		}
		if seen[e.UserID] {
			t.Errorf("%s written twice", e.UserID)
		}
		seen[e.UserID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct entries, want %d", len(seen), n)
	}
}

// testAuditManyInOneDecision: a decision's entries are all written, in
// order, however many (a store may insert them several rows at a time:
// 85 is every chunk size of the SQLite store's once, 64+16+4+1).
func testAuditManyInOneDecision(t *testing.T, s framework.Store) {
	in := make([]framework.AuditEntry, 85)
	for i := range in {
		in[i] = framework.AuditEntry{Time: at(time.Duration(i) * time.Second), Event: framework.EventVerify, Actor: "panel",
			UserID: fmt.Sprintf("user%02d", i), Provider: "totp", Audience: framework.AudienceClient, Outcome: "deny",
			Reason: "invalid_code", ClientIP: "192.0.2.7", Details: map[string]string{"n": fmt.Sprint(i)}}
	}
	if err := s.CommitDecision(t.Context(), framework.DecisionWrite{Audit: in}); err != nil {
		t.Fatal(err)
	}
	all, err := framework.AuditLog(s).ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(in) {
		t.Fatalf("ListAudit = %d entries, want %d", len(all), len(in))
	}
	for i, got := range all {
		want := in[i]
		if i > 0 && got.ID <= all[i-1].ID {
			t.Errorf("ids not increasing: %d after %d", got.ID, all[i-1].ID)
		}
		if timeDiff(got.Time, want.Time) != "" || got.UserID != want.UserID || got.Actor != want.Actor || got.Outcome != want.Outcome ||
			got.Reason != want.Reason || got.ClientIP != want.ClientIP || got.Audience != want.Audience || !reflect.DeepEqual(got.Details, want.Details) {
			t.Errorf("entry %d = %+v, want %+v", i, got, want)
		}
	}
}

// testAuditTextRefused: an audit entry with text a store cannot hold (not
// UTF-8, or a NUL, which PostgreSQL refuses) is refused with
// framework.ErrAuditText, and nothing of its decision is written: not the
// state, not the reset, not the other entries. Decisions committed with
// it at the same time (one group-committed batch) are all written.
func testAuditTextRefused(t *testing.T, s framework.Store) {
	ctx := t.Context()
	good := framework.AuditEntry{Time: base, Event: framework.EventVerify, Actor: "panel", UserID: "alice", Provider: "totp",
		Audience: framework.AudienceClient, Outcome: "allow", ClientIP: "192.0.2.7", Details: map[string]string{"k": "\x00 in details is JSON's"}}
	bad := []struct {
		name string
		edit func(*framework.AuditEntry)
	}{
		{"NUL in client_ip", func(e *framework.AuditEntry) { e.ClientIP = "198.51.100.7\x00" }},
		{"invalid UTF-8 in client_ip", func(e *framework.AuditEntry) { e.ClientIP = "fe80::1%\xff" }},
		{"NUL in reason", func(e *framework.AuditEntry) { e.Reason = "invalid\x00code" }},
		{"invalid UTF-8 in outcome", func(e *framework.AuditEntry) { e.Outcome = "\xc3" }},
		{"NUL in actor", func(e *framework.AuditEntry) { e.Actor = "\x00" }},
		{"NUL in user id", func(e *framework.AuditEntry) { e.UserID = "alice\x00" }},
		{"NUL in provider", func(e *framework.AuditEntry) { e.Provider = "totp\x00" }},
		{"NUL in event", func(e *framework.AuditEntry) { e.Event = "verify\x00" }},
		{"NUL in audience", func(e *framework.AuditEntry) { e.Audience = "client\x00" }},
	}
	e := active(t, s, "alice", "totp")
	if _, _, err := s.ReserveAttempt(ctx, "alice", framework.BudgetFactor, at(0), lockFrom(100)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range bad {
		entry := good
		tc.edit(&entry)
		upd := e
		upd.State = []byte("written by a refused decision")
		err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &upd, ResetUser: "alice", Audit: []framework.AuditEntry{good, entry}})
		if !errors.Is(err, framework.ErrAuditText) {
			t.Errorf("CommitDecision with %s: %v, want ErrAuditText", tc.name, err)
		}
		if err := framework.AuditLog(s).AppendAudit(ctx, entry); !errors.Is(err, framework.ErrAuditText) {
			t.Errorf("AppendAudit with %s: %v, want ErrAuditText", tc.name, err)
		}
	}
	if got := mustGet(t, s, "alice", "totp"); got.Version != e.Version || string(got.State) != string(e.State) {
		t.Errorf("state after refused decisions: %q v%d", got.State, got.Version)
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("a refused decision reset the budget: %+v", a)
	}
	if list, _ := framework.AuditLog(s).ListAudit(ctx, framework.AuditQuery{}); len(list) != 0 {
		t.Errorf("%d audit entries written by refused decisions: %+v", len(list), list)
	}

	// Good and bad decisions at once: every good one is written.
	results := burst.Count(concurrency, func(i int) string {
		entry := good
		entry.UserID = fmt.Sprintf("user%02d", i)
		if i%2 == 1 {
			bad[i%len(bad)].edit(&entry)
		}
		err := s.CommitDecision(ctx, framework.DecisionWrite{Audit: []framework.AuditEntry{entry}})
		switch {
		case i%2 == 0 && err != nil:
			return fmt.Sprintf("good refused: %v", err)
		case i%2 == 1 && !errors.Is(err, framework.ErrAuditText):
			return fmt.Sprintf("bad not refused: %v", err)
		}
		return "ok"
	})
	if results["ok"] != concurrency {
		t.Errorf("good and bad decisions at once: %v", results)
	}
	list, err := framework.AuditLog(s).ListAudit(ctx, framework.AuditQuery{})
	if err != nil || len(list) != (concurrency+1)/2 {
		t.Errorf("%d audit entries after good and bad decisions at once, %v; want %d", len(list), err, (concurrency+1)/2)
	}
	for _, got := range list {
		if got.ClientIP != good.ClientIP || got.Details["k"] != good.Details["k"] {
			t.Errorf("entry %+v", got)
		}
	}
}
