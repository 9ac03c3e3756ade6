package framework_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// countBarrier holds each CountRecoveryCodes until n callers have
// counted (n given by wg.Add, shared by every store it wraps): n
// confirmations of one user's first factors at once (tabs, replicas)
// all read "no codes" before any issues a set, so the test does not
// depend on the scheduler to meet the race.
type countBarrier struct {
	framework.Store
	*barrier
}

// barrier is armed for the next n counts with arm(n).
type barrier struct {
	wg    sync.WaitGroup
	armed atomic.Int64
}

func (b *barrier) arm(n int) {
	b.wg.Add(n)
	b.armed.Store(int64(n))
}

func (s countBarrier) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	n, err := s.Store.CountRecoveryCodes(ctx, userID)
	if s.armed.Add(-1) < 0 {
		return n, err
	}
	s.wg.Done()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return n, err
}

// firstBurst is how many first factors are confirmed at once: as many as
// the attempt gate lets one user have in flight before it backs off (a
// confirmation is an attempt).
const firstBurst = 4

// totpSpecs are n TOTP providers, "totp0" to "totpN-1".
func totpSpecs(n int) []framework.ProviderSpec {
	specs := make([]framework.ProviderSpec, n)
	for i := range specs {
		name := fmt.Sprintf("totp%d", i)
		specs[i] = framework.ProviderSpec{Name: name, Staff: true, Settings: totpSettings, Impl: renamed{totpprovider.New(), name}}
	}
	return specs
}

// confirmFirstFactorsAtOnce begins one pending enrollment of alice in
// each of n TOTP providers (on the frameworks in turn), then confirms
// them all at once, each on the next framework, and checks that exactly
// one confirmation shows recovery codes, that those work, and that one
// recovery.issued entry was written. Before the fix each confirmation
// counted no codes, issued a set and showed it; all but the last were
// void. Each was begun while alice had no factor, so once one is active
// the others are setups to begin again (setupfactors.go): one
// confirmation activates, the others are answered expired, all of them
// after counting no codes.
func confirmFirstFactorsAtOnce(t *testing.T, clk *clock, b *barrier, n int, fws ...*framework.Framework) {
	ctx := t.Context()
	on := func(i int) *framework.Framework { return fws[i%len(fws)] }
	secrets := make([]string, n)
	for i := range n {
		res, err := on(i).BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: fmt.Sprintf("totp%d", i), Audience: framework.AudienceStaff})
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = secretOf(t, res.Display)
	}
	b.arm(n)
	shown := make([][]string, n)
	var confirms sync.WaitGroup
	for i := range n {
		confirms.Go(func() {
			p := fmt.Sprintf("totp%d", i)
			res, err := on(i).ConfirmEnrollment(ctx, "alice", p, codeAt(t, secrets[i], clk.Now()))
			if err != nil || (res.Status != framework.StatusActive && !refusedAsStale(res, err)) {
				t.Errorf("confirm %s: %+v %v; want active, or pending expired", p, res, err)
				return
			}
			shown[i] = res.RecoveryCodes
		})
	}
	confirms.Wait()
	var sets [][]string
	for _, codes := range shown {
		if len(codes) > 0 {
			sets = append(sets, codes)
		}
	}
	if len(sets) != 1 {
		t.Fatalf("%d of %d first factors confirmed at once showed recovery codes, want 1", len(sets), n)
	}
	for k, fw := range fws {
		v, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
			Audience: framework.AudienceStaff, Code: sets[0][k]})
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome != sdk.Allow {
			t.Errorf("a recovery code shown with a confirmation, used on framework %d: %s/%s, want allow", k, v.Outcome, v.Reason)
		}
	}
	if left, _ := fws[0].RecoveryCodesLeft(ctx, "alice"); left != len(sets[0])-len(fws) {
		t.Errorf("%d codes left, want the shown set's %d less the %d used", left, len(sets[0]), len(fws))
	}
	entries, err := fws[0].Audit(ctx, framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	issued := 0
	for _, a := range entries {
		if a.Event == framework.EventRecoveryIssued {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d %s entries, want 1", issued, framework.EventRecoveryIssued)
	}
}

// TestFirstFactorCodesIssuedOnce: a burst of first factors of one user
// confirmed at once on one host issues one set of recovery codes, shown
// by one confirmation; it works (FirstOnly, in the store).
func TestFirstFactorCodesIssuedOnce(t *testing.T) {
	const n = firstBurst
	store, _ := openStore(t)
	clk := newClock()
	b := &barrier{}
	fw := startFramework(t, countBarrier{store, b}, newKey(t), clk, 0, totpSpecs(n)...)
	confirmFirstFactorsAtOnce(t, clk, b, n, fw)
}

// TestFirstFactorCodesIssuedOnceAcrossReplicas: the same burst spread
// over two frameworks sharing one PostgreSQL database, as two replicas.
func TestFirstFactorCodesIssuedOnceAcrossReplicas(t *testing.T) {
	const n = firstBurst
	clk, key := newClock(), newKey(t)
	b := &barrier{}
	var fws []*framework.Framework
	for _, s := range pgReplicas(t, 2) {
		fws = append(fws, startFramework(t, countBarrier{s, b}, key, clk, 0, totpSpecs(n)...))
	}
	confirmFirstFactorsAtOnce(t, clk, b, n, fws...)
}
