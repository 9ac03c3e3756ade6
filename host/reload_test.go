package host_test

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/duoconfig"
)

// reloadBound is the bound for a config change to take effect,
// which a quiet machine meets: the watcher's quiet period (150 ms) and the
// start of the plugins the change replaces. reloadDeadline is how long a
// test waits for it: under a shared machine's load a plugin's start alone
// can outlast reloadBound, so a test waits for the reload's own event
// (Service.Reloads) until a deadline only a lost or hung reload reaches,
// and a slow reload is logged, not failed.
const (
	reloadBound    = 2 * time.Second
	reloadDeadline = 60 * time.Second
)

// waitReload returns the next reload's outcome.
func waitReload(t *testing.T, svc *host.Service) host.ReloadEvent {
	t.Helper()
	began := time.Now()
	select {
	case ev := <-svc.Reloads():
		if took := time.Since(began); took > reloadBound {
			t.Logf("the reload took %v, more than the %v a quiet machine takes", took, reloadBound)
		}
		return ev
	case <-time.After(reloadDeadline):
		t.Fatalf("no reload within %v of the file change", reloadDeadline)
		return host.ReloadEvent{}
	}
}

// TestLiveReload: editing the config file enables Duo for staff while a
// verify loop runs, with no failed request; a file with digits: 7 is
// refused and the old config keeps serving; both are audited and shown in
// GET /v1/config/status.
func TestLiveReload(t *testing.T) {
	emu := startEmulator(t)
	_, skey := emu.Integration()
	emu.AddUser("alice")
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	confirm := h.code(secret) // replayed from now on: reaches the plugin, never locks

	stop := make(chan struct{})
	served := make(chan struct{}, 1) // a verify was answered
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	// Ends the verify loop once, also when the test fails before its end.
	stopLoop := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoop()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := h.verify("alice", confirm)
				calls.Add(1)
				if v.status != http.StatusOK || v.str("reason") != "replayed" {
					failures.Add(1)
				}
				select {
				case served <- struct{}{}:
				default:
				}
			}
		}()
	}

	// Enable Duo for staff (and change TOTP's issuer, which swaps its process).
	text, _ := os.ReadFile(h.configPath)
	duo := duoSettings(t, emu, duoconfig.Options{Failmode: "secure"})
	next := strings.Replace(string(text), "settings: {issuer: ACME Billing}", "settings: {issuer: ACME Renamed}", 1) + duo
	if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload refused: %v", ev.Err)
	}
	p := h.do("GET", "/v1/providers", adminKey, nil)
	if !strings.Contains(toJSON(p.body), `"name":"duo"`) {
		t.Fatalf("duo not active after reload: %v", p.body)
	}
	if r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); r.status != http.StatusCreated {
		t.Errorf("enroll in the newly enabled duo: %d %v", r.status, r.body)
	}

	// digits: 7 is refused; TOTP keeps serving with the running config.
	bad := strings.Replace(next, "settings: {issuer: ACME Renamed}", "settings: {issuer: ACME Renamed, digits: 7}", 1)
	if err := os.WriteFile(h.configPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := waitReload(t, h.svc)
	if ev.Applied || ev.Err == nil || !strings.Contains(ev.Err.Error(), "providers.totp.settings.digits") {
		t.Fatalf("digits 7: %+v", ev)
	}
	// The loop keeps being served. Waiting on its answers, not spinning:
	// a spinning test takes a core from the host it waits for.
	before := calls.Load()
	deadline := time.After(reloadDeadline)
	for calls.Load() < before+20 {
		select {
		case <-served:
		case <-deadline:
			t.Fatalf("%d verifies answered in %v after the refused reload, want 20", calls.Load()-before, reloadDeadline)
		}
	}
	stopLoop()
	if failures.Load() != 0 {
		t.Errorf("%d of %d verifies failed across the reloads", failures.Load(), calls.Load())
	}

	st := h.do("GET", "/v1/config/status", adminKey, nil)
	refused, _ := st.body["last_refused"].(map[string]any)
	if st.status != 200 || st.str("hash") == "" || refused == nil || !strings.Contains(str(refused["error"]), "providers.totp.settings.digits") ||
		len(str(refused["hash"])) != 64 || refused["hash"] == st.body["hash"] {
		t.Errorf("config status: %d %v", st.status, st.body)
	}
	auditBody := h.do("GET", "/v1/audit?limit=1000", adminKey, nil).body
	var reloads []string
	for _, e := range auditBody["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] == "config.reload" {
			reloads = append(reloads, str(m["actor"])+"/"+str(m["outcome"]))
		}
	}
	if strings.Join(reloads, " ") != "config/applied config/refused" {
		t.Errorf("reload audit entries: %v", reloads)
	}
	audit := toJSON(auditBody)
	if strings.Contains(audit, skey) || strings.Contains(toJSON(st.body), skey) {
		t.Error("the Duo secret key leaked into the audit log or status")
	}
	// A change that needs a restart is refused, naming the key.
	restart := strings.Replace(next, "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1)
	os.WriteFile(h.configPath, []byte(restart), 0o600)
	if ev := waitReload(t, h.svc); ev.Applied || !strings.Contains(ev.Err.Error(), "listen") {
		t.Errorf("listen change: %+v", ev)
	}
}
