package framework_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// failFirstCodes is a store whose next decision that carries first
// recovery codes fails whole, as a transaction the disk or the server
// refused does.
type failFirstCodes struct {
	framework.Store
	armed atomic.Bool
}

func (s *failFirstCodes) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	if d.FirstCodes != nil && s.armed.CompareAndSwap(true, false) {
		return errors.New("disk I/O error")
	}
	return s.Store.CommitDecision(ctx, d)
}

// TestFirstFactorNotLeftWithoutCodes: a first factor and its recovery
// codes are one write. When it fails, the factor is not active (before,
// the activation was committed and the codes' own write failed after it:
// an active factor with no codes, a user told the confirmation failed,
// and "already active" when confirming again); confirming again then
// activates it with its codes. The same for a provider that activates at
// begin (nothing to confirm).
func TestFirstFactorNotLeftWithoutCodes(t *testing.T) {
	t.Run("confirm", func(t *testing.T) {
		store, path := openStore(t)
		faulty := &failFirstCodes{Store: store}
		e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
		e.fw = startFramework(t, faulty, e.key, e.clk, 0, inProcess())
		secret := e.begin(t, "alice")
		faulty.armed.Store(true)
		if res, err := e.fw.ConfirmEnrollment(t.Context(), "alice", "totp", codeAt(t, secret, e.clk.Now())); err == nil {
			t.Fatalf("confirm with its write failing: %+v, want an error", res)
		}
		if got, err := store.Get(t.Context(), "alice", "totp"); err != nil || got.Status != framework.StatusPending {
			t.Errorf("after the failed confirm: %+v %v, want still pending", got, err)
		}
		e.clk.Advance(period)
		res, err := e.fw.ConfirmEnrollment(t.Context(), "alice", "totp", codeAt(t, secret, e.clk.Now()))
		if err != nil || res.Status != framework.StatusActive || len(res.RecoveryCodes) != 10 {
			t.Fatalf("confirm again: %+v %v, want active with 10 codes", res, err)
		}
		if n, _ := store.CountRecoveryCodes(t.Context(), "alice"); n != 10 {
			t.Errorf("%d codes stored, want 10", n)
		}
	})
	t.Run("begin", func(t *testing.T) {
		store, _ := openStore(t)
		faulty := &failFirstCodes{Store: store}
		prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
		fw := pushOpener(t, prov, newClock(), newKey(t), framework.Policy{})(faulty)
		in := framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff}
		faulty.armed.Store(true)
		if res, err := fw.BeginEnrollment(t.Context(), in); err == nil {
			t.Fatalf("begin that activates, its write failing: %+v, want an error", res)
		}
		if got, err := store.Get(t.Context(), "alice", "push"); err == nil && got.Status == framework.StatusActive {
			t.Errorf("after the failed activation: %+v, want not active", got)
		}
		res, err := fw.BeginEnrollment(t.Context(), in)
		if err != nil || res.Status != framework.StatusActive || len(res.RecoveryCodes) != 10 {
			t.Fatalf("begin again: %+v %v, want active with 10 codes", res, err)
		}
	})
}
