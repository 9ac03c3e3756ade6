package framework_test

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// TestReconfigure: a live change swaps a provider's process without a
// failed request; an invalid change is refused and the running
// configuration keeps serving.
func TestReconfigure(t *testing.T) {
	bin := pluginPath(t)
	e := newEnv(t, asPlugin(bin))
	secret := e.begin(t, "alice")
	confirm := codeAt(t, secret, e.clk.Now())
	if r := e.confirm(t, "alice", confirm); r.Status != framework.StatusActive {
		t.Fatalf("confirm: %+v", r)
	}

	// A loop of verifies that always reach the provider (a replayed code is
	// answered by it, and does not spend the attempt budget).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: confirm})
				calls.Add(1)
				if err != nil || res.Reason != sdk.ReasonReplayed {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.Join(err, errors.New(string(res.Reason))))
				}
			}
		}()
	}

	// Changed settings: a new process is started, activated and swapped in.
	changed := asPlugin(bin)
	changed.Settings = maps.Clone(changed.Settings)
	changed.Settings["issuer"] = "ACME Renamed"
	if err := e.fw.Reconfigure(t.Context(), []framework.ProviderSpec{changed}, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	// Let the loop run on the new process for a while (by count, not time).
	for calls.Load() < before+50 {
	}
	// A refused change: digits 7. Nothing changes.
	bad := asPlugin(bin)
	bad.Settings = maps.Clone(bad.Settings)
	bad.Settings["digits"] = "7"
	err := e.fw.Reconfigure(t.Context(), []framework.ProviderSpec{bad}, framework.Policy{})
	var se *sdk.Error
	if !errors.As(err, &se) || se.Field != "digits" {
		t.Errorf("digits 7 accepted or wrong error: %v", err)
	}
	before = calls.Load()
	for calls.Load() < before+50 {
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d verifies failed during reloads; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
	st := e.fw.Providers()
	if len(st) != 1 || !st[0].Running || st[0].Restarts != 0 {
		t.Errorf("after reloads: %+v", st)
	}

	// Enabling another audience and removing nothing keeps the user's
	// enrollment; removing the provider makes it unknown.
	both := changed
	both.Clients = true
	if err := e.fw.Reconfigure(t.Context(), []framework.ProviderSpec{both}, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
	if err := e.fw.Reconfigure(t.Context(), nil, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: "123456"})
	wantCode(t, err, framework.CodeUnknownProvider)
}

// TestReconfigureAudiencesOnly: a change of a provider's audiences alone
// takes effect at once and keeps the running process (no restart, no
// second Activate against its backend); a settings change starts a new
// one.
func TestReconfigureAudiencesOnly(t *testing.T) {
	bin := copyPlugin(t, "audiences")
	staffOnly := asPlugin(bin)
	staffOnly.Clients = false
	e := newEnv(t, staffOnly)
	secret := e.enroll(t, "alice")
	pids := testbin.Processes(filepath.Dir(bin))
	if len(pids) != 1 {
		t.Fatalf("plugin processes = %v, want one", pids)
	}
	_, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Code: "123456"})
	wantCode(t, err, framework.CodeAudienceNotAllowed)

	clientsOnly := staffOnly
	clientsOnly.Staff, clientsOnly.Clients = false, true
	if err := e.fw.Reconfigure(t.Context(), []framework.ProviderSpec{clientsOnly}, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	if got := testbin.Processes(filepath.Dir(bin)); !slices.Equal(got, pids) {
		t.Errorf("an audience change restarted the plugin: processes %v, were %v", got, pids)
	}
	res, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient,
		Code: codeAt(t, secret, e.clk.Advance(period))})
	if err != nil || res.Outcome != sdk.Allow {
		t.Errorf("clients after enabling them: %+v, %v", res, err)
	}
	_, err = e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: "123456"})
	wantCode(t, err, framework.CodeAudienceNotAllowed)
	if st := e.fw.Providers(); len(st) != 1 || st[0].Staff || !st[0].Clients {
		t.Errorf("status after the change: %+v", st)
	}

	renamed := clientsOnly
	renamed.Settings = maps.Clone(renamed.Settings)
	renamed.Settings["issuer"] = "ACME Renamed"
	if err := e.fw.Reconfigure(t.Context(), []framework.ProviderSpec{renamed}, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	// The replaced process stops once idle; the new one is running.
	if err := testbin.WaitExit(pids[0]); err != nil {
		t.Errorf("the replaced plugin process: %v", err)
	}
	if got := testbin.Processes(filepath.Dir(bin)); len(got) != 1 || got[0] == pids[0] {
		t.Errorf("after a settings change: processes %v, were %v", got, pids)
	}
}

// TestReconfigureWarnsStranded: a reload that disables the only provider
// an enrolled user has logs a WARN with the number of such users; the user
// is then denied at login, never let in without a factor.
func TestReconfigureWarnsStranded(t *testing.T) {
	var logs syncbuf.Buffer
	e := newEnv(t)
	e.fw.Close()
	fw, err := framework.New(t.Context(), framework.Options{
		Store: e.store, EncryptionKey: e.key, Providers: []framework.ProviderSpec{inProcess()}, Now: e.clk.Now,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	e.fw = fw
	e.enroll(t, "alice")
	e.enroll(t, "bob")
	if err := fw.Reconfigure(t.Context(), nil, framework.Policy{}); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "[WARN]") || !strings.Contains(out, "users=2") || !strings.Contains(out, "recovery code") {
		t.Errorf("reload log = %q, want a WARN counting 2 stranded users with the fix", out)
	}
	res, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff})
	if err != nil || res.Decision != framework.DecisionDeny || res.Why != framework.WhyProviderUnavailable || !res.RecoveryAvailable {
		t.Errorf("challenge after the reload: %+v, %v", res, err)
	}
}
