package framework_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/sdk"
)

// auditDown is the SQLite store with an audit log that can be made to
// fail, as a full disk or a lost connection would.
type auditDown struct {
	*sqlite.Store
	down atomic.Bool
}

func (s *auditDown) AppendAudit(ctx context.Context, e framework.AuditEntry) error {
	if s.down.Load() {
		return errors.New("audit log unavailable")
	}
	return s.Store.AppendAudit(ctx, e)
}

// TestUnlockFailsClosed: Unlock ends a lockout and keeps the factor, with
// an "unlock" audit entry; when that entry cannot be written, the lock
// stays; a bad user id changes nothing.
func TestUnlockFailsClosed(t *testing.T) {
	store, _ := openStore(t)
	wrap := &auditDown{Store: store}
	clk := newClock()
	e := &env{clk: clk, store: store, key: newKey(t)}
	e.fw = startFramework(t, wrap, e.key, clk, 0, inProcess())
	secret := e.enroll(t, "alice")
	clk.Advance(30 * time.Second)
	for range 6 { // past the free attempts: in backoff
		e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
			Code: wrongCode(t, secret, clk.Now())})
	}
	locked := func() bool {
		_, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
			Code: codeAt(t, secret, clk.Now())})
		return framework.CodeOf(err) == framework.CodeLockedOut
	}
	if !locked() {
		t.Fatal("not locked out after six wrong codes")
	}

	wrap.down.Store(true)
	wantCode(t, e.fw.Unlock(t.Context(), "alice"), framework.CodeInternal)
	wrap.down.Store(false)
	if !locked() {
		t.Fatal("an unlock that could not be audited took effect")
	}
	if err := e.fw.Unlock(t.Context(), "al\x00ice"); framework.CodeOf(err) != framework.CodeInvalidRequest {
		t.Fatalf("bad user id: %v", err)
	}

	if err := e.fw.Unlock(framework.WithActor(t.Context(), "ops"), "alice"); err != nil {
		t.Fatal(err)
	}
	e.wantVerify(t, "alice", codeAt(t, secret, clk.Now()), sdk.Allow, "")
	entries, err := e.fw.Audit(t.Context(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var unlocks []framework.AuditEntry
	for _, a := range entries {
		if a.Event == framework.EventUnlock {
			unlocks = append(unlocks, a)
		}
	}
	if len(unlocks) != 1 || unlocks[0].Actor != "ops" || unlocks[0].Outcome != "unlocked" {
		t.Errorf("unlock audit entries: %+v", unlocks)
	}
}
