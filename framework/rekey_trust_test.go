package framework_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// trusty is pushy that, as Duo with Remembered Devices on, gives a trust
// token of its own with each allow, and notes the trust token each verify
// brought it.
type trusty struct {
	pushy
	mu   sync.Mutex
	sent map[string]string // user → the trust token of their last verify
}

func (p *trusty) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "trusty", Version: "1", Capabilities: sdk.Capabilities{Code: true, Factors: []sdk.Factor{"passcode"}}}, nil
}

func (p *trusty) Verify(_ context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[req.User.ID] = req.TrustToken
	return sdk.VerifyResponse{Outcome: sdk.Allow, TrustToken: "trust of " + req.User.ID}, nil
}

func (p *trusty) lastSent(user string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[user]
}

// faultyTrustReseal is the SQLite store with a hook before each page of
// trust tokens rekey writes; the hook's error fails that page's write.
type faultyTrustReseal struct {
	*sqlite.Store
	pages int
	hook  func(page int) error
}

func (s *faultyTrustReseal) ResealTrustTokens(ctx context.Context, b []framework.TrustTokenReseal) ([]bool, error) {
	s.pages++
	if s.hook != nil {
		if err := s.hook(s.pages); err != nil {
			return nil, err
		}
	}
	return s.Store.ResealTrustTokens(ctx, b)
}

// trustEnv is a SQLite store, the trusty provider with remembered
// devices on for staff, and a clock.
type trustEnv struct {
	t     *testing.T
	store *sqlite.Store
	clk   *clock
	key1  []byte
	p     *trusty
}

func newTrustEnv(t *testing.T) *trustEnv {
	store, _ := openStore(t)
	return &trustEnv{t: t, store: store, clk: newClock(), key1: newKey(t), p: &trusty{sent: map[string]string{}}}
}

// start runs a framework on s with keys (the current first).
func (te *trustEnv) start(s framework.Store, keys ...[]byte) *framework.Framework {
	te.t.Helper()
	policy := framework.Policy{Staff: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 7}}}
	fw, err := framework.New(context.Background(), framework.Options{Store: s, EncryptionKey: keys[0], PreviousKeys: keys[1:],
		Providers: []framework.ProviderSpec{{Name: "trusty", Staff: true, Impl: te.p}}, Now: te.clk.Now, Policy: policy})
	if err != nil {
		te.t.Fatal(err)
	}
	te.t.Cleanup(func() { fw.Close() })
	return fw
}

// verify lets user in on fw, with the remembered device, or remembering
// a new one when device is "".
func (te *trustEnv) verify(fw *framework.Framework, user, device string) framework.VerifyResult {
	res, err := te.try(fw, user, device)
	if err != nil {
		te.t.Helper()
		te.t.Fatal(err)
	}
	return res
}

func (te *trustEnv) try(fw *framework.Framework, user, device string) (framework.VerifyResult, error) {
	res, err := fw.Verify(context.Background(), framework.VerifyInput{UserID: user, Provider: "trusty", Audience: framework.AudienceStaff,
		Code: "123456", DeviceToken: device, RememberDevice: device == "", DeviceLabel: "test browser"})
	if err == nil && (res.Outcome != sdk.Allow || (device == "" && res.DeviceToken == "")) {
		err = fmt.Errorf("verify %s: %+v, want allow and a device token", user, res)
	}
	return res, err
}

// remember enrolls users user000... on fw and remembers a device of each,
// returning their device tokens.
func (te *trustEnv) remember(t *testing.T, fw *framework.Framework, users int) map[string]string {
	tokens := map[string]string{}
	for i := range users {
		user := fmt.Sprintf("user%03d", i)
		if res, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: user, Provider: "trusty", Audience: framework.AudienceStaff}); err != nil || res.Status != framework.StatusActive {
			t.Fatalf("enroll %s: %+v, %v", user, res, err)
		}
		tokens[user] = te.verify(fw, user, "").DeviceToken
	}
	return tokens
}

// TestRekeyTrustTokensPageByPage: remembered devices' trust tokens,
// re-sealed by rekey a page per transaction. A rekey that dies after its
// first page (the second page's write fails, as a SIGKILL there would
// stop it) leaves every token openable under one of the configured keys,
// the rest still under the previous one; a device revoked while its page
// was re-sealed is skipped. rekey run again finishes, and under the new
// key alone each device's token reaches the provider again. Progress is
// reported after each page written, of enrollments and of trust tokens.
func TestRekeyTrustTokensPageByPage(t *testing.T) {
	const users = 520 // more than one page of 500
	te := newTrustEnv(t)
	store, p, start, verify := te.store, te.p, te.start, te.verify
	key1, key2 := te.key1, newKey(t)
	tokens := te.remember(t, start(store, key1), users)

	faulty := &faultyTrustReseal{Store: store}
	revoked := "user007"
	faulty.hook = func(page int) error {
		if page == 1 {
			_, err := store.DeleteDevices(t.Context(), revoked)
			return err
		}
		return errors.New("killed")
	}
	rotated := start(faulty, key2, key1)
	var progress []string
	report := func(phase framework.RekeyPhase, scanned, resealed int) {
		progress = append(progress, fmt.Sprintf("%d:%d/%d", phase, scanned, resealed))
	}
	wantProgress := func(run string, want ...string) {
		t.Helper()
		if fmt.Sprint(progress) != fmt.Sprint(want) {
			t.Errorf("%s: progress %v, want %v (phase:read/re-sealed after each page)", run, progress, want)
		}
		progress = nil
	}
	if res, err := rotated.RekeyAll(t.Context(), report); err == nil || res.TrustTokens != 499 {
		t.Fatalf("RekeyAll that dies at its second page = %+v, %v; want an error after 499 tokens (the revoked one skipped)", res, err)
	}
	wantProgress("the run that dies", "0:500/500", "0:520/520", "1:500/499")
	if c, err := rotated.CountSealed(t.Context()); err != nil || c.TrustTokens != users-1 || c.TrustUnopenable != 0 || c.TrustPrevious != users-500 {
		t.Fatalf("CountSealed after the death = %+v, %v; want %d tokens, all open, %d under the previous key", c, err, users-1, users-500)
	}
	faulty.hook = nil
	if res, err := rotated.RekeyAll(t.Context(), report); err != nil || res.TrustTokens != users-500 || res.Enrollments != 0 {
		t.Fatalf("RekeyAll again = %+v, %v; want the %d tokens left", res, err, users-500)
	}
	// The revoked device moved user500 into the first page.
	wantProgress("the run again", "0:500/0", "0:520/0", "1:500/1", "1:519/20")
	// Pages with nothing left to re-seal are reported too.
	if res, err := rotated.RekeyAll(t.Context(), report); err != nil || res != (framework.RekeyResult{}) {
		t.Fatalf("RekeyAll a third time = %+v, %v; want nothing re-sealed", res, err)
	}
	wantProgress("the run with nothing left", "0:500/0", "0:520/0", "1:500/0", "1:519/0")

	only := start(store, key2)
	if c, err := only.CountSealed(t.Context()); err != nil || c.TrustTokens != users-1 || c.TrustPrevious != 0 || c.TrustUnopenable != 0 {
		t.Errorf("CountSealed under the new key alone = %+v, %v", c, err)
	}
	for _, user := range []string{"user000", "user499", "user500", fmt.Sprintf("user%03d", users-1)} {
		verify(only, user, tokens[user])
		if got := p.lastSent(user); got != "trust of "+user {
			t.Errorf("%s's remembered device under the new key alone: the provider got trust token %q", user, got)
		}
	}
}

// TestRekeyTrustTokensRacesDevices: rekey, with at the same moment half
// the users revoking their remembered device and the other half
// remembering a second one (on the rotated replica). Whatever the
// interleaving, nothing fails, no device revoked comes back, and
// afterwards every trust token opens under the new key alone.
func TestRekeyTrustTokensRacesDevices(t *testing.T) {
	const users = 20
	te := newTrustEnv(t)
	key2 := newKey(t)
	te.remember(t, te.start(te.store, te.key1), users)
	rotated := te.start(te.store, key2, te.key1)
	_, errs := burst.Run2(users+1, func(i int) (struct{}, error) {
		if i == users {
			_, err := rotated.RekeyAll(t.Context(), nil)
			return struct{}{}, err
		}
		user := fmt.Sprintf("user%03d", i)
		if i%2 == 0 {
			_, err := rotated.RevokeDevices(t.Context(), user)
			return struct{}{}, err
		}
		_, err := te.try(rotated, user, "")
		return struct{}{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	only := te.start(te.store, key2)
	if c, err := only.CountSealed(t.Context()); err != nil || c.TrustTokens != users || c.TrustPrevious != 0 || c.TrustUnopenable != 0 {
		t.Errorf("CountSealed under the new key alone = %+v, %v; want %d tokens (two each for half the users), all open", c, err, users)
	}
}

// TestTrustTokensUnderRemovedKey: trust tokens left under a key that was
// then removed (here rekey's trust-token pages failed, and the admin
// removed the key anyway). They let no one in: CountSealed counts them
// apart from the enrollments (all open), rekey leaves them and counts
// them without failing, and a verify with such a device is asked again
// by the provider, which gets no token.
func TestTrustTokensUnderRemovedKey(t *testing.T) {
	te := newTrustEnv(t)
	key2 := newKey(t)
	tokens := te.remember(t, te.start(te.store, te.key1), 3)
	faulty := &faultyTrustReseal{Store: te.store, hook: func(int) error { return errors.New("store down") }}
	if res, err := te.start(faulty, key2, te.key1).RekeyAll(t.Context(), nil); err == nil || res.Enrollments != 3 {
		t.Fatalf("RekeyAll with its trust pages failing = %+v, %v; want the enrollments re-sealed, then an error", res, err)
	}
	only := te.start(te.store, key2)
	if c, err := only.CountSealed(t.Context()); err != nil || c.Unopenable != 0 || c.Enrollments != 3 || c.TrustTokens != 3 || c.TrustUnopenable != 3 {
		t.Errorf("CountSealed under the new key alone = %+v, %v; want 3 enrollments open, 3 trust tokens not", c, err)
	}
	if res, err := only.RekeyAll(t.Context(), nil); err != nil || res.TrustUnopenable != 3 || res.TrustTokens != 0 {
		t.Errorf("RekeyAll under the new key alone = %+v, %v; want 3 trust tokens counted as unopenable and left", res, err)
	}
	te.verify(only, "user001", tokens["user001"])
	if got := te.p.lastSent("user001"); got != "" {
		t.Errorf("a trust token under a removed key reached the provider as %q", got)
	}
}
