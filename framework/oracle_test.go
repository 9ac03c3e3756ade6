package framework_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// slowProvider wraps TOTP and takes a fixed extra time per verify, as a
// plugin hop or a backend round trip does.
type slowProvider struct {
	*totp.Provider
	delay time.Duration
}

func (s slowProvider) Verify(ctx context.Context, r sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	time.Sleep(s.delay) // stands in for the real cost being measured
	return s.Provider.Verify(ctx, r)
}

// TestNotEnrolledIsPadded: after answered verifies have taught the
// framework a provider's usual time, a not-enrolled answer is held back to
// about that time instead of returning early.
func TestNotEnrolledIsPadded(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	store, _ := openStore(t)
	clk := newClock()
	fw, err := framework.New(t.Context(), framework.Options{
		Store: store, EncryptionKey: newKey(t), Now: clk.Now,
		Providers: []framework.ProviderSpec{{Name: "totp", Staff: true, Settings: sdk.Settings{"issuer": "ACME"},
			Impl: slowProvider{totp.New(), 100 * time.Millisecond}}},
		Sleep: func(_ context.Context, d time.Duration) { mu.Lock(); slept = append(slept, d); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	e := &env{fw: fw, clk: clk, store: store}
	secret := e.enroll(t, "alice")
	for range 3 {
		e.verify(t, "alice", wrongCode(t, secret, clk.Advance(period)))
	}
	if len(slept) != 0 {
		t.Fatalf("answered verifies were padded: %v", slept)
	}
	res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "nobody", Provider: "totp", Audience: framework.AudienceStaff, Code: "123456"})
	if err != nil || res.Reason != framework.ReasonNotEnrolled {
		t.Fatalf("%+v, %v", res, err)
	}
	if len(slept) != 1 || slept[0] < 50*time.Millisecond {
		t.Errorf("not-enrolled answer padded by %v, want close to the provider's 100ms", slept)
	}
}
