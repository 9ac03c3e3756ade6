package framework_test

import (
	"cmp"
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// countingProvider counts its own wrong confirmation codes in the state,
// as a provider that lets only a few guesses at a code it sent does: the
// state is the count, and after maxWrong wrong codes even the right one
// is refused. seen records the count each finish step was given.
type countingProvider struct {
	limit int // wrong codes allowed; maxWrong when 0
	mu    sync.Mutex
	seen  []int
}

const maxWrong = 3

func (p *countingProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "counter", Version: "1",
		Capabilities: sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true}}, nil
}
func (p *countingProvider) Configure(context.Context, sdk.Settings) error { return nil }
func (p *countingProvider) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}

func (p *countingProvider) Enroll(_ context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if req.Step == sdk.EnrollBegin {
		return sdk.EnrollResponse{State: []byte("0")}, nil
	}
	n, err := strconv.Atoi(string(req.State))
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInvalidState, "state")
	}
	p.mu.Lock()
	p.seen = append(p.seen, n)
	p.mu.Unlock()
	switch {
	case n >= cmp.Or(p.limit, maxWrong):
		return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil // no new state: nothing to count
	case req.Code == "right":
		return sdk.EnrollResponse{State: []byte("done"), Done: true}, nil
	}
	return sdk.EnrollResponse{State: []byte(strconv.Itoa(n + 1)), Reason: sdk.ReasonInvalidCode}, nil
}

func (p *countingProvider) Verify(context.Context, sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
}

func (p *countingProvider) counts() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.seen...)
}

// TestRefusedConfirmKeepsState: the state a provider returns with a
// refused confirmation is stored, so the next confirmation sees it (the
// provider's own count of wrong codes ends the enrollment's code); a
// confirm refused before the provider (a locked-out user, a bad user id)
// changes nothing, and every confirm still passes the attempt gate.
func TestRefusedConfirmKeepsState(t *testing.T) {
	p := &countingProvider{}
	e := newEnv(t, framework.ProviderSpec{Name: "counter", Staff: true, Impl: p})
	ctx := t.Context()
	confirm := func(user, code string) (framework.ConfirmResult, error) {
		return e.fw.ConfirmEnrollment(ctx, user, "counter", code)
	}
	if _, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: "counter", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	for i := range maxWrong {
		res, err := confirm("alice", "wrong")
		if err != nil || res.Status != framework.StatusPending || res.Reason != sdk.ReasonInvalidCode {
			t.Fatalf("wrong code %d: %+v %v", i, res, err)
		}
	}
	// Bad input is refused before the provider and changes nothing.
	if _, err := confirm("bad user\n", "wrong"); framework.CodeOf(err) != framework.CodeInvalidRequest {
		t.Errorf("bad user id: %v", err)
	}
	// The provider's count reached its limit: the right code is refused.
	if res, err := confirm("alice", "right"); err != nil || res.Status != framework.StatusPending || res.Reason != sdk.ReasonExpired {
		t.Errorf("right code after %d wrong ones: %+v %v, want expired", maxWrong, res, err)
	}
	if got, want := p.counts(), []int{0, 1, 2, 3}; !equalInts(got, want) {
		t.Errorf("counts the provider was given: %v, want %v", got, want)
	}

	// Through the gate: wrong confirms count against the budget, and a
	// locked-out user's confirm never reaches the provider (whose own
	// limit is set higher than the budget here).
	p.limit = 100
	if _, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "bob", Provider: "counter", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	before := len(p.counts())
	var locked bool
	for range framework.DefaultLockoutPolicy.FreeAttempts + 3 {
		_, err := confirm("bob", "wrong")
		if framework.CodeOf(err) == framework.CodeLockedOut {
			locked = true
			break
		}
	}
	if !locked {
		t.Fatal("wrong confirms never locked the user out")
	}
	seen := len(p.counts())
	if _, err := confirm("bob", "right"); framework.CodeOf(err) != framework.CodeLockedOut {
		t.Errorf("confirm while locked out: %v", err)
	}
	if got := len(p.counts()); got != seen {
		t.Errorf("a locked-out confirm reached the provider (%d calls, want %d)", got, seen)
	}
	if seen-before > framework.DefaultLockoutPolicy.FreeAttempts+1 {
		t.Errorf("%d confirms reached the provider before the lockout", seen-before)
	}
}

// TestRefusedConfirmBurst: simultaneous wrong confirms of one enrollment
// never lose a count: each refused confirm that returned its refusal
// wrote its count (compare-and-swap), deciding again on the count the one
// before it wrote when it lost the race.
func TestRefusedConfirmBurst(t *testing.T) {
	p := &countingProvider{}
	e := newEnv(t, framework.ProviderSpec{Name: "counter", Staff: true, Impl: p})
	ctx := t.Context()
	if _, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "carol", Provider: "counter", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	// Fewer than the free attempts: the gate lets every one through, so
	// only the compare-and-swap orders them.
	results, errs := burst.Run2(4, func(int) (framework.ConfirmResult, error) {
		return e.fw.ConfirmEnrollment(ctx, "carol", "counter", "wrong")
	})
	refused := 0
	for i, res := range results {
		switch err := errs[i]; {
		case err == nil && res.Reason == sdk.ReasonInvalidCode:
			refused++
		case err == nil && res.Reason == sdk.ReasonExpired: // the provider's limit: nothing written
		case framework.CodeOf(err) == framework.CodeConflict: // lost the race: nothing written
		default:
			t.Errorf("confirm: %+v %v", res, err)
		}
	}
	if refused == 0 {
		t.Fatal("no confirm of the burst was refused")
	}
	// The next confirm sees exactly as many wrong codes as were refused.
	if _, err := e.fw.ConfirmEnrollment(ctx, "carol", "counter", "right"); err != nil {
		t.Fatal(err)
	}
	got := p.counts()
	if n := got[len(got)-1]; n != refused {
		t.Errorf("after %d refused confirms the provider was given %d", refused, n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
