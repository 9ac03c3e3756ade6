package host_test

import (
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logLines keeps what a host process logs, line by line, and wakes a
// waiter at each line.
type logLines struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLogLines() *logLines { return &logLines{added: make(chan struct{}, 1)} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

// nextReload returns the first line from line from on that tells a reload's
// outcome, and the index after it.
func (l *logLines) nextReload(t *testing.T, from int) (string, int) {
	t.Helper()
	deadline := time.After(reloadDeadline)
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if s := l.lines[i]; strings.Contains(s, "configuration reloaded") || strings.Contains(s, "configuration change refused") {
				l.mu.Unlock()
				return s, i + 1
			}
		}
		from = len(l.lines)
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no reload logged within %v", reloadDeadline)
		}
	}
}

// TestWatcherRefusesLooseningReload: a config rewritten without its policy
// block (a writer that stopped at a line's end, a full disk between two
// sections) still loads, and turns policy.client.require from true to its
// default, false. The watcher refuses it: carol, a client user with no
// factor, is still told to enroll; the refusal is logged and audited,
// naming the key and SIGHUP. The admin's SIGHUP applies the same file; the
// policy written back (a tightening) applies by itself.
func TestWatcherRefusesLooseningReload(t *testing.T) {
	plugins := pluginCopy(t)
	const policy = "policy:\n  client:\n    require: true\n"
	path := writeConfig(t, plugins, totpClients+policy)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogLines()
	cmd, url, _ := startProcessOut(t, path, nil, nil, logs)
	h := &testHost{t: t, url: url}
	carol := func() map[string]string { return map[string]string{"audience": "client"} }
	wantDecision(t, h.challenge("carol", carol()), "enroll", "enrollment_required")

	cut := strings.TrimSuffix(string(full), policy)
	if err := os.WriteFile(path, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}
	line, at := logs.nextReload(t, 0)
	if !strings.Contains(line, "configuration change refused") || !strings.Contains(line, "policy.client.require") ||
		!strings.Contains(line, "SIGHUP") {
		t.Fatalf("the watcher's reload of the file without its policy: %q; want it refused naming policy.client.require and SIGHUP", line)
	}
	wantDecision(t, h.challenge("carol", carol()), "enroll", "enrollment_required")
	refused := 0
	for _, e := range h.do("GET", "/v1/audit?limit=1000", adminKey, nil).body["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] != "config.reload" {
			continue
		}
		if m["outcome"] != "refused" || m["reason"] != "loosens_second_factor" || !strings.Contains(toJSON(m), "policy.client.require") {
			t.Errorf("reload audited as %s", toJSON(m))
		}
		refused++
	}
	if refused != 1 {
		t.Errorf("%d reloads audited, want the one refused", refused)
	}

	// The admin means it: SIGHUP applies the file as it is.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if line, at = logs.nextReload(t, at); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("SIGHUP: %q, want the file applied", line)
	}
	wantDecision(t, h.challenge("carol", carol()), "allow", "not_required")

	// Requiring the factor again tightens: the watcher applies it.
	if err := os.WriteFile(path, full, 0o600); err != nil {
		t.Fatal(err)
	}
	if line, _ = logs.nextReload(t, at); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("the policy written back: %q, want it applied by the watcher", line)
	}
	wantDecision(t, h.challenge("carol", carol()), "enroll", "enrollment_required")
}

// TestWatcherRefusesLooserProviderSetting: a provider's own schema says
// which of its settings loosen (sdk.Loosens), and the host judges a
// reload by it, naming no provider itself. TOTP's skew raised from 0 to 2
// (more codes accepted at once) is refused by the watcher, with the
// provider's reason; the admin's SIGHUP applies it; lowering it again
// applies by itself.
func TestWatcherRefusesLooserProviderSetting(t *testing.T) {
	plugins := pluginCopy(t)
	strict := strings.Replace(totpClients, "settings: {issuer: ACME Billing}", "settings: {issuer: ACME Billing, skew: 0}", 1)
	path := writeConfig(t, plugins, strict)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogLines()
	cmd, url, _ := startProcessOut(t, path, nil, nil, logs)
	h := &testHost{t: t, url: url}
	wantDecision(t, h.challenge("carol", map[string]string{"audience": "client"}), "allow", "not_required")

	loose := strings.Replace(string(full), "skew: 0", "skew: 2", 1)
	if err := os.WriteFile(path, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	line, at := logs.nextReload(t, 0)
	if !strings.Contains(line, "configuration change refused") || !strings.Contains(line, "providers.totp.settings.skew") ||
		!strings.Contains(line, "more codes are accepted") {
		t.Fatalf("the watcher's reload of skew 0 → 2: %q; want it refused naming providers.totp.settings.skew and why", line)
	}
	// The refusal is logged, then audited.
	var audited []string
	h.waitFor("the refusal audited", reloadDeadline, func() (response, bool) {
		r := h.do("GET", "/v1/audit?limit=1000", adminKey, nil)
		audited = audited[:0]
		for _, e := range r.body["entries"].([]any) {
			if m := e.(map[string]any); m["event"] == "config.reload" {
				audited = append(audited, toJSON(m))
			}
		}
		return r, len(audited) > 0
	})
	if len(audited) != 1 || !strings.Contains(audited[0], `"reason":"loosens_second_factor"`) ||
		!strings.Contains(audited[0], "providers.totp.settings.skew") {
		t.Errorf("reloads audited: %v; want the one refused, naming the setting", audited)
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if line, at = logs.nextReload(t, at); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("SIGHUP: %q, want the file applied", line)
	}
	if err := os.WriteFile(path, full, 0o600); err != nil {
		t.Fatal(err)
	}
	if line, _ = logs.nextReload(t, at); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("skew 2 → 0: %q, want it applied by the watcher", line)
	}
}
