package host_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/host/metrics"
	"github.com/twofactor/twofactor/internal/testbin"
)

// totpTimeout1s is TOTP for clients with a 1 s call deadline, which keeps
// the hang tests fast.
const totpTimeout1s = `providers:
  totp:
    enabled: true
    clients: true
    timeout: 1s
    settings: {issuer: ACME Billing}
`

// pollUntil polls cond every 20 ms until it holds, or fails the test
// after within.
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestStoppedPluginAnswersProviderTimeout: with the TOTP plugin
// SIGSTOPped, a verify answers 503 provider_timeout within its deadline
// plus a second, is audited and counted; /readyz turns 503; the plugin is
// declared hung, killed and restarted; verifies then work again.
func TestStoppedPluginAnswersProviderTimeout(t *testing.T) {
	h := startHost(t, totpTimeout1s)
	secret := h.enroll("alice")
	pids := []int{testbin.OnlyProcess(t, h.pluginsDir)}
	testbin.Stop(t, pids[0])
	h.clock.Add(30 * time.Second) // the confirmation's code is spent

	start := time.Now()
	v := h.verify("alice", h.code(secret))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("verify on a stopped plugin took %s, want at most timeout+1s", took)
	}
	if v.status != http.StatusServiceUnavailable || v.errCode() != "provider_timeout" {
		t.Fatalf("verify on a stopped plugin: %d %v", v.status, v.body)
	}
	took := pollUntil(t, 10*time.Second, "/readyz 503", func() bool {
		return h.do("GET", "/readyz", "", nil).status == http.StatusServiceUnavailable
	})
	t.Logf("/readyz 503 %s after the first timeout", took)
	if err := waitGone(pids, 10*time.Second); err != nil {
		t.Fatalf("hung plugin not killed: %v", err)
	}
	pollUntil(t, 10*time.Second, "plugin restarted and ready", func() bool {
		return h.do("GET", "/readyz", "", nil).status == http.StatusOK
	})
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.status != http.StatusOK || v.str("outcome") != "allow" {
		t.Errorf("after the restart: %d %v", v.status, v.body)
	}

	p := h.do("GET", "/v1/providers", adminKey, nil)
	list, _ := p.body["providers"].([]any)
	if len(list) != 1 {
		t.Fatalf("/v1/providers: %v", p.body)
	}
	st, _ := list[0].(map[string]any)
	if n, _ := st["timeouts"].(float64); st["hangs"] != 1.0 || n < 1 || st["hung"] != false || st["running"] != true {
		t.Errorf("/v1/providers after the hang: %v", st)
	}
	audit, err := h.svc.Framework.Audit(context.Background(), framework.AuditQuery{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var timeouts int
	for _, e := range audit {
		if e.Event == framework.EventVerify && e.Outcome == "error" && e.Reason == "provider_timeout" {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("audited provider_timeout attempts: %d, want 1 (%+v)", timeouts, audit)
	}
	_, ss := h.scrape(adminKey)
	ss.want(t, 1, metrics.ProviderHangs, "provider", "totp")
	ss.want(t, 0, metrics.ProviderHung, "provider", "totp")
	ss.want(t, 1, metrics.VerifyTotal, "provider", "totp", "outcome", "error", "reason", "provider_timeout")
	if v, _ := ss.get(metrics.ProviderTimeouts, "provider", "totp"); v < 1 {
		t.Errorf("%s = %v, want at least 1", metrics.ProviderTimeouts, v)
	}
}

// TestSIGTERMWithStoppedPlugin: the real binary, its plugin SIGSTOPped,
// exits within shutdown_timeout+5s of SIGTERM and leaves no process.
func TestSIGTERMWithStoppedPlugin(t *testing.T) {
	plugins := pluginCopy(t)
	cmd, url := startProcessWith(t, writeConfig(t, plugins, totpTimeout1s+"shutdown_timeout: 3s\n"))
	pids := []int{testbin.OnlyProcess(t, plugins)}
	testbin.Stop(t, pids[0])
	// A request in flight on the stopped plugin as the signal arrives.
	inflight := make(chan error, 1)
	go func() {
		res, err := http.Post(url+"/v1/users/alice/verify", "application/json", strings.NewReader(`{}`))
		if err == nil {
			res.Body.Close()
		}
		inflight <- err
	}()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Logf("host exited %s after SIGTERM: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(3*time.Second + 5*time.Second):
		t.Fatal("host still running shutdown_timeout+5s after SIGTERM")
	}
	<-inflight
	noOrphans(t, plugins, pids, "after SIGTERM")
}

// TestReloadReplacesStoppedPlugin: a reload that replaces a stopped
// plugin (a changed setting starts a new process) leaves no process of the
// old one behind, and the new one serves.
func TestReloadReplacesStoppedPlugin(t *testing.T) {
	h := startHost(t, totpTimeout1s)
	secret := h.enroll("alice")
	pids := []int{testbin.OnlyProcess(t, h.pluginsDir)}
	testbin.Stop(t, pids[0])
	text, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(text), "issuer: ACME Billing", "issuer: ACME Billing 2", 1)
	if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload: %+v", ev)
	}
	noOrphansButOne(t, h.pluginsDir, pids)
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.status != http.StatusOK || v.str("outcome") != "allow" {
		t.Errorf("after the reload: %d %v", v.status, v.body)
	}
}

// noOrphansButOne checks that the old plugin processes exit within 10 s
// and exactly one, new, plugin process serves.
func noOrphansButOne(t *testing.T, dir string, old []int) {
	t.Helper()
	if err := waitGone(old, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if now := testbin.Processes(dir); len(now) != 1 {
		t.Errorf("plugin processes after the reload: %v, want one new", now)
	}
}
