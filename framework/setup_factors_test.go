package framework_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// A pending setup stands for the user's factors when it was begun: begun
// without a step-up because the user had none, by whoever held the
// password, it must not be finished once the user has a factor (by any
// caller: the API's confirm, a "continue your setup" button, the Go
// framework), only begun again, under a step-up.

// midFinish runs its hook once, in the middle of a confirmation of the
// provider it wraps: after the framework read the enrollments, while the
// provider checks the code, before the confirmation is written.
type midFinish struct {
	sdk.Provider
	hook *atomic.Pointer[func()]
}

func (m midFinish) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if req.Step == sdk.EnrollFinish {
		if h := m.hook.Swap(nil); h != nil {
			(*h)()
		}
	}
	return m.Provider.Enroll(ctx, req)
}

// hookedSpecs are "totp" and "totp2", the second with a midFinish hook.
func hookedSpecs(hook *atomic.Pointer[func()]) []framework.ProviderSpec {
	return []framework.ProviderSpec{
		{Name: "totp", Staff: true, Settings: totpSettings, Impl: totpprovider.New()},
		{Name: "totp2", Staff: true, Settings: totpSettings, Impl: midFinish{renamed{totpprovider.New(), "totp2"}, hook}},
	}
}

// beginIn begins user's enrollment in provider and returns its secret.
func beginIn(t *testing.T, fw *framework.Framework, user, provider string) string {
	t.Helper()
	res, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: user, Provider: provider, Audience: framework.AudienceStaff})
	if err != nil || res.Status != framework.StatusPending {
		t.Fatalf("begin %s for %s: %+v %v", provider, user, res, err)
	}
	return secretOf(t, res.Display)
}

// statuses is the user's enrollments as "provider/status,...".
func statuses(t *testing.T, fw *framework.Framework, user string) string {
	t.Helper()
	list, err := fw.Enrollments(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.Provider+"/"+string(e.Status))
	}
	return strings.Join(out, ",")
}

// refusedAsStale reports whether a confirmation was answered as a setup
// to begin again.
func refusedAsStale(res framework.ConfirmResult, err error) bool {
	return err == nil && res.Status == framework.StatusPending && res.Reason == sdk.ReasonExpired
}

// TestSetupBegunUnderOtherFactorsNotConfirmed: alice's "totp2" setup is
// confirmed with the right code after her other factors changed. A factor
// activated since the begin (a first one, or one reset and set up again)
// refuses it, also to a burst of confirmations at once, and a setup begun
// again is confirmed. A factor removed since does not: a removal never
// raises the bar the begin passed (TestResetRacingConfirmKeepsCodes).
func TestSetupBegunUnderOtherFactorsNotConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(e *env) string // returns totp2's secret
		refused bool
	}{
		{"begun without a factor, one set up since", func(e *env) string {
			s := beginIn(t, e.fw, "alice", "totp2") // the intruder, with the password only
			e.enroll(t, "alice")
			return s
		}, true},
		{"begun with a factor that was reset and set up again", func(e *env) string {
			e.enroll(t, "alice")
			s := beginIn(t, e.fw, "alice", "totp2")
			if err := e.fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(period)
			e.enroll(t, "alice")
			return s
		}, true},
		{"begun with a factor, unchanged", func(e *env) string {
			e.enroll(t, "alice")
			return beginIn(t, e.fw, "alice", "totp2")
		}, false},
		{"begun with a factor, reset since", func(e *env) string {
			e.enroll(t, "alice")
			s := beginIn(t, e.fw, "alice", "totp2")
			if err := e.fw.ResetEnrollment(t.Context(), "alice", "totp"); err != nil {
				t.Fatal(err)
			}
			return s
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := twoTOTPs(t)
			secret := tc.setup(e)
			e.clk.Advance(period)
			confirm := func(int) (framework.ConfirmResult, error) {
				return e.fw.ConfirmEnrollment(context.Background(), "alice", "totp2", codeAt(t, secret, e.clk.Now()))
			}
			if !tc.refused {
				if res, err := confirm(0); err != nil || res.Status != framework.StatusActive {
					t.Fatalf("confirm: %+v %v, want active", res, err)
				}
				return
			}
			results, errs := burst.Run2(8, confirm)
			for i := range results {
				if !refusedAsStale(results[i], errs[i]) {
					t.Errorf("confirm %d of the stale setup: %+v %v; want pending, expired", i, results[i], errs[i])
				}
			}
			if got := statuses(t, e.fw, "alice"); strings.Contains(got, "totp2/active") {
				t.Fatalf("alice's enrollments after confirming the stale setup: %s", got)
			}
			secret = beginIn(t, e.fw, "alice", "totp2")
			if res, err := confirm(0); err != nil || res.Status != framework.StatusActive {
				t.Errorf("the setup begun again: %+v %v, want active", res, err)
			}
		})
	}
}

// TestFactorActivatedDuringConfirmRefusesIt: alice's "totp" and "totp2"
// are both begun while she has no factor; "totp" is confirmed in the
// middle of the confirmation of "totp2", after its reads and before its
// write. Only one becomes active: a check of her factors read before the
// write would pass both.
func TestFactorActivatedDuringConfirmRefusesIt(t *testing.T) {
	store, _ := openStore(t)
	factorActivatedDuringConfirm(t, store, store)
}

// TestFactorActivatedDuringConfirmRefusesItAcrossReplicas: the same, the
// confirmation of "totp" on another replica sharing PostgreSQL.
func TestFactorActivatedDuringConfirmRefusesItAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	factorActivatedDuringConfirm(t, stores[0], stores[1])
}

func factorActivatedDuringConfirm(t *testing.T, on, other framework.Store) {
	clk, key := newClock(), newKey(t)
	hook := &atomic.Pointer[func()]{}
	fw := startFramework(t, on, key, clk, 0, hookedSpecs(hook)...)
	fw2 := startFramework(t, other, key, clk, 0, hookedSpecs(&atomic.Pointer[func()]{})...)
	secret := beginIn(t, fw, "alice", "totp")
	secret2 := beginIn(t, fw, "alice", "totp2")
	clk.Advance(period)
	var first framework.ConfirmResult
	var firstErr error
	h := func() {
		first, firstErr = fw2.ConfirmEnrollment(context.Background(), "alice", "totp", codeAt(t, secret, clk.Now()))
	}
	hook.Store(&h)
	res, err := fw.ConfirmEnrollment(context.Background(), "alice", "totp2", codeAt(t, secret2, clk.Now()))
	if hook.Load() != nil {
		t.Fatal("the confirmation of totp2 never reached its provider")
	}
	if firstErr != nil || first.Status != framework.StatusActive {
		t.Fatalf("totp, confirmed in the middle: %+v %v", first, firstErr)
	}
	if !refusedAsStale(res, err) {
		t.Errorf("totp2, whose check came before totp's activation: %+v %v; want pending, expired", res, err)
	}
	if got := statuses(t, fw, "alice"); got != "totp/active,totp2/pending" {
		t.Errorf("alice's enrollments: %s, want totp/active,totp2/pending", got)
	}
}

// setupBurst is how many users confirm two setups at once.
const setupBurst = 8

// TestSetupsConfirmedAtOnceActivateOne: setupBurst users each confirm
// "totp" and "totp2", both begun without a factor, at once: for each, one
// is active and the other answered to begin again.
func TestSetupsConfirmedAtOnceActivateOne(t *testing.T) {
	store, _ := openStore(t)
	setupsAtOnce(t, store, store)
}

// TestSetupsConfirmedAtOnceActivateOneAcrossReplicas: the same, the two
// confirmations of each user on two replicas sharing PostgreSQL.
func TestSetupsConfirmedAtOnceActivateOneAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	setupsAtOnce(t, stores[0], stores[1])
}

func setupsAtOnce(t *testing.T, a, b framework.Store) {
	clk, key := newClock(), newKey(t)
	fws := []*framework.Framework{
		startFramework(t, a, key, clk, 0, twoFactorSpecs()...),
		startFramework(t, b, key, clk, 0, twoFactorSpecs()...),
	}
	providers := []string{"totp", "totp2"}
	secrets := make([]string, 2*setupBurst)
	for i := range secrets {
		secrets[i] = beginIn(t, fws[0], fmt.Sprintf("user-%d", i/2), providers[i%2])
	}
	clk.Advance(period)
	results, errs := burst.Run2(2*setupBurst, func(i int) (framework.ConfirmResult, error) {
		return fws[i%2].ConfirmEnrollment(context.Background(), fmt.Sprintf("user-%d", i/2), providers[i%2], codeAt(t, secrets[i], clk.Now()))
	})
	for u := range setupBurst {
		active, stale := 0, 0
		for _, i := range []int{2 * u, 2*u + 1} {
			switch {
			case errs[i] == nil && results[i].Status == framework.StatusActive:
				active++
			case refusedAsStale(results[i], errs[i]):
				stale++
			default:
				t.Errorf("user-%d's %s: %+v %v", u, providers[i%2], results[i], errs[i])
			}
		}
		if active != 1 || stale != 1 {
			t.Errorf("user-%d: %d setups activated, %d answered to begin again; want one each (%s)", u, active, stale,
				statuses(t, fws[0], fmt.Sprintf("user-%d", u)))
		}
	}
}
