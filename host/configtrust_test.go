package host_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
)

// TestReloadRefusesUntrustedConfig: on a running host, a config file made
// writable by its group (or its folder by others, or the file readable by
// others while it holds the keys inline) and then rewritten with a new
// API key is refused at the reload: the error names the file, the path at
// fault and the fix; it is audited (config.reload refused) and shown in
// GET /v1/config/status; the new key is refused and the old one still
// works. Once the mode is repaired, a reload (SIGHUP) applies the file.
func TestReloadRefusesUntrustedConfig(t *testing.T) {
	h := startHost(t, totpClients)
	dir := filepath.Dir(h.configPath)
	text, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	key := appKey
	refusals := 0
	for _, tc := range []struct {
		name     string
		at       string // the path made open
		open, ok os.FileMode
		fix      string
	}{
		{"file group-writable", h.configPath, 0o620, 0o600, "chmod go-w " + h.configPath},
		{"folder others-writable", dir, 0o777, 0o700, "chmod go-w " + dir},
		{"file others-readable with the keys inline", h.configPath, 0o604, 0o600, "chmod 600 " + h.configPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The file's mode is part of what the watcher compares: a
			// chmod of the file reloads by itself, and is refused as the
			// rewrite below is. (A folder's mode is checked at each load,
			// not watched.)
			watched := tc.at == h.configPath
			wantRefused := func(ev host.ReloadEvent) {
				t.Helper()
				var fe *config.FileError
				if ev.Applied || !errors.As(ev.Err, &fe) || fe.Path != tc.at || !strings.HasPrefix(fe.Fix, tc.fix) ||
					!strings.Contains(ev.Err.Error(), h.configPath) {
					t.Fatalf("reload of a config opened to others: %+v, want refused naming %s and %q", ev, tc.at, tc.fix)
				}
				refusals++
			}
			if err := os.Chmod(tc.at, tc.open); err != nil {
				t.Fatal(err)
			}
			if watched {
				wantRefused(waitReload(t, h.svc))
			}
			next := newKey(t)
			changed := []byte(strings.Replace(string(text), key, next, 1))
			// os.WriteFile keeps the mode of a file that exists.
			if err := os.WriteFile(h.configPath, changed, 0o600); err != nil {
				t.Fatal(err)
			}
			wantRefused(waitReload(t, h.svc))
			if r := h.do("GET", "/v1/users/alice/enrollments", next, nil); r.status != http.StatusUnauthorized {
				t.Errorf("the key from the refused file answers %d", r.status)
			}
			if r := h.do("GET", "/v1/users/alice/enrollments", key, nil); r.status != http.StatusOK {
				t.Errorf("the running config's key answers %d", r.status)
			}
			st := h.do("GET", "/v1/config/status", adminKey, nil)
			refused, _ := st.body["last_refused"].(map[string]any)
			if refused == nil || !strings.Contains(str(refused["error"]), tc.fix) {
				t.Errorf("config status: %v", st.body)
			}
			var audited []string
			for _, e := range h.do("GET", "/v1/audit?limit=1000", adminKey, nil).body["entries"].([]any) {
				if m := e.(map[string]any); m["event"] == "config.reload" && m["outcome"] == "refused" {
					audited = append(audited, toJSON(m))
				}
			}
			if len(audited) != refusals || !strings.Contains(audited[len(audited)-1], tc.fix) {
				t.Errorf("%d refused reloads audited, want %d, the last naming %q: %v", len(audited), refusals, tc.fix, audited)
			}

			// Repaired: the file's chmod reloads by itself; after the
			// folder's, SIGHUP (Reload) does.
			if err := os.Chmod(tc.at, tc.ok); err != nil {
				t.Fatal(err)
			}
			if !watched {
				if err := h.svc.Reload(context.Background()); err != nil {
					t.Fatalf("reload after the repair: %v", err)
				}
			}
			if ev := waitReload(t, h.svc); !ev.Applied {
				t.Fatalf("reload after the repair: %+v", ev)
			}
			h.keyWorks(next, 5*time.Second)
			key, text = next, changed
		})
	}
}
