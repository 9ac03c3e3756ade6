package framework_test

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// TestRekeyKeepsTimes: re-sealing changes no row's times. A pending
// setup's lifetime is counted from its UpdatedAt (refuseConfirm), so a
// rekey that stamped the rows it wrote gave every old pending setup a new
// lifetime. alice's setup, begun 10 minutes before the rekey, is expired
// 16 minutes after it was begun, as without the rekey; carol's active row
// keeps its time, and so does bob's, which a login on an old-key replica
// wrote between rekey's read and write (the batch loses it, and rekey
// re-seals it on its own: rekeyAgain), with the login's time.
func TestRekeyKeepsTimes(t *testing.T) {
	e := newEnv(t, inProcess()) // PendingTTL: the default 15 minutes
	begun := e.clk.Now()
	aliceSecret := e.begin(t, "alice")
	bobSecret := e.enroll(t, "bob")
	e.enroll(t, "carol")
	login := e.clk.Advance(10 * time.Minute)

	store := &beforeReseal{Store: e.store}
	fw := e.rotated(t, store, newKey(t))
	var bobLogin framework.Enrollment
	store.hook = func() {
		if res := e.verify(t, "bob", codeAt(t, bobSecret, login)); res.Outcome != sdk.Allow {
			t.Errorf("bob's login during rekey: %+v", res)
		}
		var err error
		if bobLogin, err = e.store.Get(t.Context(), "bob", "totp"); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Minute) // rekey writes after the login, a minute later
	}
	before := map[string]framework.Enrollment{}
	for _, user := range []string{"alice", "carol"} {
		row, err := e.store.Get(t.Context(), user, "totp")
		if err != nil {
			t.Fatal(err)
		}
		before[user] = row
	}
	if n, err := fw.Rekey(t.Context()); err != nil || n != 3 {
		t.Fatalf("Rekey = %d, %v; want 3", n, err)
	}
	if store.hook != nil {
		t.Fatal("the hook never ran: no page was written")
	}
	before["bob"] = bobLogin
	for user, was := range before {
		row, err := e.store.Get(t.Context(), user, "totp")
		if err != nil {
			t.Fatal(err)
		}
		if row.Version != was.Version+1 {
			t.Errorf("%s: version %d, want %d (re-sealed once)", user, row.Version, was.Version+1)
		}
		for _, f := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt", row.CreatedAt, was.CreatedAt},
			{"UpdatedAt", row.UpdatedAt, was.UpdatedAt},
			{"ConfirmedAt", row.ConfirmedAt, was.ConfirmedAt},
		} {
			if !f.got.Equal(f.want) {
				t.Errorf("%s: %s %s after rekey, was %s", user, f.name, f.got.Format(time.RFC3339), f.want.Format(time.RFC3339))
			}
		}
	}

	now := e.clk.Advance(5 * time.Minute)
	if now.Sub(begun) != 16*time.Minute {
		t.Fatalf("clock at %s after the setup began, want 16m", now.Sub(begun))
	}
	res, err := fw.ConfirmEnrollment(t.Context(), "alice", "totp", codeAt(t, aliceSecret, now))
	if err != nil || res.Status != framework.StatusPending || res.Reason != sdk.ReasonExpired {
		t.Errorf("alice's confirm 16 minutes after her setup began, across a rekey: %+v, %v; want pending, expired", res, err)
	}
}
