package host_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// keyWorks polls an app route with key until it answers 200.
func (h *testHost) keyWorks(key string, within time.Duration) time.Duration {
	h.t.Helper()
	return h.waitFor("the new API key", within, func() (response, bool) {
		r := h.do("GET", "/v1/users/alice/enrollments", key, nil)
		return r, r.status == http.StatusOK
	})
}

func newKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestConfigWatcherSurvives: the config replaced in each way deploy tools
// and editors replace it — deleted and written again, a new file renamed
// over it (sed -i), a symlink swapped to a new file (a Kubernetes
// ConfigMap) — one after the other on the same running host: each time a
// new API key works within 5 s, and /v1/config/status says the watcher is
// watching.
func TestConfigWatcherSurvives(t *testing.T) {
	h := startHost(t, totpClients)
	dir := filepath.Dir(h.configPath)
	base, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	key := appKey
	withKey := func(k string) []byte {
		return []byte(strings.Replace(string(base), appKey, k, 1))
	}
	steps := []struct {
		name    string
		replace func(text []byte)
	}{
		{"delete and create", func(text []byte) {
			if err := os.Remove(h.configPath); err != nil {
				t.Fatal(err)
			}
			// The watcher sees the file gone: that reload is refused
			// and the running config stays.
			if ev := waitReload(t, h.svc); ev.Applied {
				t.Fatalf("a reload of a deleted config was applied: %+v", ev)
			}
			if err := os.WriteFile(h.configPath, text, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"rename over", func(text []byte) {
			tmp := filepath.Join(dir, ".twofactor.yaml.sedXXXX")
			if err := os.WriteFile(tmp, text, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, h.configPath); err != nil {
				t.Fatal(err)
			}
		}},
		{"becomes a symlink", func(text []byte) {
			target := filepath.Join(dir, "v1.yaml")
			if err := os.WriteFile(target, text, 0o600); err != nil {
				t.Fatal(err)
			}
			swapLink(t, target, h.configPath)
		}},
		{"symlink swapped", func(text []byte) {
			target := filepath.Join(dir, "v2.yaml")
			if err := os.WriteFile(target, text, 0o600); err != nil {
				t.Fatal(err)
			}
			swapLink(t, target, h.configPath)
		}},
		{"symlink target edited", func(text []byte) {
			if err := os.WriteFile(filepath.Join(dir, "v2.yaml"), text, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, step := range steps {
		next := newKey(t)
		step.replace(withKey(next))
		took := h.keyWorks(next, 5*time.Second)
		t.Logf("%s: the new key works after %v", step.name, took.Round(time.Millisecond))
		if r := h.do("GET", "/v1/users/alice/enrollments", key, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("%s: the replaced key still answers %d", step.name, r.status)
		}
		key = next
		st := h.do("GET", "/v1/config/status", adminKey, nil)
		w, _ := st.body["watch"].(map[string]any)
		if w["watching"] != true {
			t.Fatalf("%s: config status: %v", step.name, st.body)
		}
	}
}

const reloadQuietForTest = 150 * time.Millisecond

// swapLink points link at target atomically, as a ConfigMap update does:
// a new link renamed over the old name.
func swapLink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(target), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// TestConfigWatcherIgnoresDatabaseWrites: the database and its WAL live
// in the config's folder; their writes must not wake a reload.
func TestConfigWatcherIgnoresDatabaseWrites(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	for range 20 {
		h.clock.Add(30 * time.Second)
		if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
			t.Fatalf("verify: %d %v", v.status, v.body)
		}
	}
	select {
	case ev := <-h.svc.Reloads():
		t.Fatalf("a reload ran though only the database changed: %+v", ev)
	case <-time.After(4 * reloadQuietForTest):
	}
}

// TestConfigWatcherRetriesAfterError: the config path becomes a symlink
// loop, which the watcher cannot resolve: /v1/config/status says it is
// not watching and why, and the watcher keeps trying. Once the path
// leads to a file again, it watches again and a new API key works within
// 5 s.
func TestConfigWatcherRetriesAfterError(t *testing.T) {
	h := startHost(t, totpClients)
	dir := filepath.Dir(h.configPath)
	base, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop.yaml")
	if err := os.Symlink("twofactor.yaml", loop); err != nil {
		t.Fatal(err)
	}
	swapLink(t, loop, h.configPath) // twofactor.yaml -> loop.yaml -> twofactor.yaml
	h.waitFor("the watcher reporting the loop", 5*time.Second, func() (response, bool) {
		st := h.do("GET", "/v1/config/status", adminKey, nil)
		w, _ := st.body["watch"].(map[string]any)
		e, _ := w["last_error"].(map[string]any)
		return st, w["watching"] == false && strings.Contains(str(e["error"]), "symlinks")
	})

	next := newKey(t)
	if err := os.WriteFile(filepath.Join(dir, "fixed.yaml"), []byte(strings.Replace(string(base), appKey, next, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	swapLink(t, filepath.Join(dir, "fixed.yaml"), h.configPath)
	h.keyWorks(next, 5*time.Second)
	h.waitFor("the watcher watching again", 5*time.Second, func() (response, bool) {
		st := h.do("GET", "/v1/config/status", adminKey, nil)
		w, _ := st.body["watch"].(map[string]any)
		return st, w["watching"] == true
	})
}

// TestConfigWatcherConfigMap: the layout of a Kubernetes ConfigMap volume,
// where the config is a link through a folder link (twofactor.yaml ->
// ..data/twofactor.yaml, ..data -> ..v1) and an update swaps ..data to a
// new folder in one rename. The new API key works within 5 s, twice.
func TestConfigWatcherConfigMap(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	dir := filepath.Dir(path)
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	version := func(name string, text []byte) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "twofactor.yaml"), text, 0o600); err != nil {
			t.Fatal(err)
		}
		swapLink(t, filepath.Join(dir, name), filepath.Join(dir, "..data"))
	}
	version("..v1", base)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "twofactor.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := startHostAt(t, plugins, path, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	for _, v := range []string{"..v2", "..v3"} {
		next := newKey(t)
		version(v, []byte(strings.Replace(string(base), appKey, next, 1)))
		took := h.keyWorks(next, 5*time.Second)
		t.Logf("%s: the new key works after %v", v, took.Round(time.Millisecond))
	}
}

// TestConfigWatcherSeesChmod: the config holds secrets inline, so a file
// opened to others must not load. A chmod 644 of the running host's file
// reloads by itself, and that reload is refused saying why (logged,
// audited, in the status) while the running configuration stays; chmod
// 600 reloads again and applies.
func TestConfigWatcherSeesChmod(t *testing.T) {
	h := startHost(t, totpClients)
	if err := os.Chmod(h.configPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); ev.Applied || ev.Err == nil || !strings.Contains(ev.Err.Error(), "readable by group or others") {
		t.Fatalf("reload after chmod 644: %+v, want refused as readable", ev)
	}
	st := h.do("GET", "/v1/config/status", adminKey, nil)
	if refused, _ := st.body["last_refused"].(map[string]any); refused == nil || !strings.Contains(str(refused["error"]), "chmod 600") {
		t.Errorf("config status after chmod 644: %v, want the refusal with its fix", st.body)
	}
	if r := h.do("GET", "/v1/users/alice/enrollments", appKey, nil); r.status != http.StatusOK {
		t.Errorf("the running configuration's key after the refused reload: %d", r.status)
	}
	if err := os.Chmod(h.configPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload after chmod 600: %+v, want applied", ev)
	}
}
