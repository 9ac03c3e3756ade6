package framework_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// pushProvider is a minimal out-of-band provider: Verify sends a "push"
// and each poll answers from a script. It exercises the framework's
// transaction handling; the Duo provider is tested against its emulator.
type pushProvider struct {
	mu      sync.Mutex
	answers map[string]sdk.Outcome // by provider txid
	reasons map[string]sdk.Reason  // a deny's reason by provider txid; denied_by_user when unset
	polled  []string
	sent    int   // pushes started
	pollErr error // when set, every poll fails with it (a provider answering garbage)
}

func (p *pushProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "push", Version: "1", Capabilities: sdk.Capabilities{Push: true, Factors: []sdk.Factor{"push"}}}, nil
}
func (p *pushProvider) Configure(context.Context, sdk.Settings) error { return nil }
func (p *pushProvider) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}
func (p *pushProvider) Enroll(context.Context, sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return sdk.EnrollResponse{State: []byte("enrolled"), Done: true}, nil
}
func (p *pushProvider) Verify(_ context.Context, r sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.TxID == "" {
		p.sent++
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: "duo-tx-" + r.User.ID}, nil
	}
	p.polled = append(p.polled, r.TxID)
	if p.pollErr != nil {
		return sdk.VerifyResponse{}, p.pollErr
	}
	switch out := p.answers[r.TxID]; out {
	case sdk.Allow:
		return sdk.VerifyResponse{Outcome: sdk.Allow}, nil
	case sdk.Deny:
		if reason, ok := p.reasons[r.TxID]; ok {
			return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: reason}, nil
		}
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonDeniedByUser}, nil
	}
	return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: r.TxID}, nil
}

func TestPendingVerification(t *testing.T) {
	prov := &pushProvider{answers: map[string]sdk.Outcome{}, reasons: map[string]sdk.Reason{}}
	store, _ := openStore(t)
	clk := newClock()
	fw := startFramework(t, store, newKey(t), clk, 0, framework.ProviderSpec{Name: "push", Staff: true, Impl: prov})
	ctx := t.Context()
	for _, u := range []string{"alice", "bob"} {
		if _, err := fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: u, Provider: "push", Audience: framework.AudienceStaff}); err != nil {
			t.Fatal(err)
		}
	}
	push := func(user string) string {
		t.Helper()
		res, err := fw.Verify(ctx, framework.VerifyInput{UserID: user, Provider: "push", Audience: framework.AudienceStaff, Factor: "push"})
		if err != nil || res.Outcome != sdk.Pending || res.TxID == "" {
			t.Fatalf("push: %+v, %v", res, err)
		}
		if res.TxID == "duo-tx-"+user {
			t.Fatal("the provider's transaction id leaked to the caller")
		}
		return res.TxID
	}

	tx := push("alice")
	if res, err := fw.PollVerification(ctx, "alice", tx); err != nil || res.Outcome != sdk.Pending || res.TxID != tx {
		t.Fatalf("poll while waiting: %+v, %v", res, err)
	}
	// A push's txid is polled, never verified against with a code: the
	// code would otherwise reach the provider as a poll of the push.
	if _, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff,
		TxID: tx, Code: "123456"}); !isCode(err, framework.CodeNotFound) {
		t.Errorf("verify with a push's txid: %v, want not_found", err)
	}
	// Another user cannot poll (or learn about) alice's transaction.
	if _, err := fw.PollVerification(ctx, "bob", tx); !isCode(err, framework.CodeNotFound) {
		t.Errorf("bob polled alice's push: %v", err)
	}
	prov.mu.Lock()
	prov.answers["duo-tx-alice"] = sdk.Allow
	prov.mu.Unlock()
	if res, err := fw.PollVerification(ctx, "alice", tx); err != nil || res.Outcome != sdk.Allow {
		t.Fatalf("poll after approval: %+v, %v", res, err)
	}
	// A decided transaction is gone: it cannot be replayed to log in again.
	if _, err := fw.PollVerification(ctx, "alice", tx); !isCode(err, framework.CodeNotFound) {
		t.Errorf("second poll of a decided push: %v", err)
	}

	// Expiry: a push nobody answers is denied after the transaction TTL,
	// once the provider says it no longer knows it (as Duo does; a
	// provider that cannot say keeps it, TestUnpolledFraudSurvivesDuoOutage).
	tx = push("bob")
	prov.mu.Lock()
	prov.answers["duo-tx-bob"], prov.reasons["duo-tx-bob"] = sdk.Deny, sdk.ReasonExpired
	prov.mu.Unlock()
	clk.Advance(6 * time.Minute)
	if res, err := fw.PollVerification(ctx, "bob", tx); err != nil || res.Outcome != sdk.Deny || res.Reason != sdk.ReasonExpired {
		t.Errorf("expired poll: %+v, %v", res, err)
	}

	// An admin reset cancels a pending push.
	tx = push("bob")
	if err := fw.ResetEnrollment(ctx, "bob", "push"); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.PollVerification(ctx, "bob", tx); !isCode(err, framework.CodeNotFound) {
		t.Errorf("poll after reset: %v", err)
	}
}
