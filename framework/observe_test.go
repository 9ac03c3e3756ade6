package framework_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	framework.NopObserver
	mu        sync.Mutex
	verified  []string // provider/outcome/reason
	durations []time.Duration
	lockouts  []string // user/provider
}

func (r *recorder) Verified(provider string, outcome sdk.Outcome, reason sdk.Reason, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified = append(r.verified, fmt.Sprintf("%s/%s/%s", provider, outcome, reason))
	r.durations = append(r.durations, d)
}

func (r *recorder) LockedOut(user, provider string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lockouts = append(r.lockouts, user+"/"+provider)
}

func (r *recorder) take() (verified, lockouts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	verified, lockouts = r.verified, r.lockouts
	r.verified, r.lockouts = nil, nil
	return verified, lockouts
}

// TestObserver: every decision reaches the observer once, with its
// duration; a lockout is reported when it starts; pending polls are not.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	store, _ := openStore(t)
	clk := newClock()
	push := &pushProvider{answers: map[string]sdk.Outcome{}}
	fw, err := framework.New(t.Context(), framework.Options{
		Store: store, EncryptionKey: newKey(t), Now: clk.Now, Observer: rec,
		Providers: []framework.ProviderSpec{inProcess(), {Name: "push", Staff: true, Impl: push}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	e := &env{fw: fw, clk: clk, store: store}
	ctx := t.Context()

	secret := e.enroll(t, "alice")
	clk.Advance(period)
	code := codeAt(t, secret, clk.Now())
	e.wantVerify(t, "alice", code, sdk.Allow, "")
	e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
	e.wantVerify(t, "bob", code, sdk.Deny, framework.ReasonNotEnrolled)
	wrong := wrongCode(t, secret, clk.Now())
	for range 5 {
		e.wantVerify(t, "alice", wrong, sdk.Deny, sdk.ReasonInvalidCode)
	}
	_, err = fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: code})
	wantCode(t, err, framework.CodeLockedOut)
	// Not decisions: an unknown provider and a bad user id.
	if _, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "sms", Audience: framework.AudienceStaff}); err == nil {
		t.Fatal("unknown provider accepted")
	}
	if _, err := fw.Verify(ctx, framework.VerifyInput{UserID: "", Provider: "totp", Audience: framework.AudienceStaff}); err == nil {
		t.Fatal("empty user id accepted")
	}

	got, locks := rec.take()
	want := []string{"totp/allow/", "totp/deny/replayed", "totp/deny/not_enrolled"}
	for range 5 {
		want = append(want, "totp/deny/invalid_code")
	}
	want = append(want, "totp/deny/locked_out")
	if !slices.Equal(got, want) {
		t.Errorf("verified:\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(locks, []string{"alice/totp"}) {
		t.Errorf("lockouts = %q, want one for alice/totp", locks)
	}
	for i, d := range rec.durations {
		if d <= 0 || d > time.Minute {
			t.Errorf("decision %d (%s) took %v", i, want[min(i, len(want)-1)], d)
		}
	}

	// A push: pending once, then its outcome; the polls in between are not
	// decisions.
	if _, err := fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "carol", Provider: "push", Audience: framework.AudienceStaff}); err != nil {
		t.Fatal(err)
	}
	res, err := fw.Verify(ctx, framework.VerifyInput{UserID: "carol", Provider: "push", Audience: framework.AudienceStaff, Factor: "push"})
	if err != nil || res.Outcome != sdk.Pending {
		t.Fatalf("push: %+v %v", res, err)
	}
	for range 3 {
		if r, err := fw.PollVerification(ctx, "carol", res.TxID); err != nil || r.Outcome != sdk.Pending {
			t.Fatalf("poll: %+v %v", r, err)
		}
	}
	push.mu.Lock()
	push.answers["duo-tx-carol"] = sdk.Deny
	push.mu.Unlock()
	if r, err := fw.PollVerification(ctx, "carol", res.TxID); err != nil || r.Outcome != sdk.Deny {
		t.Fatalf("poll after deny: %+v %v", r, err)
	}
	got, _ = rec.take()
	if want := []string{"push/pending/waiting", "push/deny/denied_by_user"}; !slices.Equal(got, want) {
		t.Errorf("push verified:\n got %q\nwant %q", got, want)
	}
}

// TestNilObserver: without an Observer the framework runs as before.
func TestNilObserver(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.enroll(t, "alice")
	e.clk.Advance(period)
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Now()), sdk.Allow, "")
}
