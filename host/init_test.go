package host_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework/config"
)

// TestInit: init writes a config (0600, once) whose fresh keys pass the
// key rules, unpinned as make run needs; with --pin, the enabled
// provider is pinned to its binary's sha256 (what digest prints), the
// pinned plugin starts, and a changed binary is then refused. --pin
// refuses a missing or writable binary and writes nothing.
func TestInit(t *testing.T) {
	plugins := pluginCopy(t)

	t.Run("unpinned", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dev", "twofactor.yaml")
		code, out, stderr := runCLI("init", "--config", path, "--plugins-dir", plugins)
		if code != 0 || !strings.Contains(out, "wrote "+path) {
			t.Fatalf("init: exit %d %q %q", code, out, stderr)
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode())
		}
		if strings.Contains(string(text), "sha256") {
			t.Errorf("unpinned init wrote a pin:\n%s", text)
		}
		if _, err := config.Load(config.Source{File: path, Environ: []string{}}); err != nil {
			t.Fatalf("init's config does not load: %v", err)
		}
		if code, out, _ := runCLI("init", "--config", path, "--plugins-dir", plugins); code != 0 || !strings.Contains(out, "using existing config") {
			t.Errorf("second init: exit %d %q", code, out)
		}
		if again, _ := os.ReadFile(path); string(again) != string(text) {
			t.Error("second init changed the config")
		}
	})

	t.Run("listen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "twofactor.yaml")
		code, out, stderr := runCLI("init", "--config", path, "--plugins-dir", plugins, "--listen", "127.0.0.1:8741")
		if code != 0 || !strings.Contains(out, "http://127.0.0.1:8741/v1/providers") {
			t.Fatalf("init --listen: exit %d %q %q; want the hint on the chosen address", code, out, stderr)
		}
		cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
		if err != nil || cfg.Listen != "127.0.0.1:8741" {
			t.Fatalf("init --listen wrote listen %q (%v)", cfg.Listen, err)
		}
		for _, bad := range []string{"8741", "127.0.0.1:http", "127.0.0.1:70000", "a b:1", "x\nencryption_key: y:1", "[::1]:8741 #"} {
			path := filepath.Join(t.TempDir(), "twofactor.yaml")
			if code, _, stderr := runCLI("init", "--config", path, "--plugins-dir", plugins, "--listen", bad); code != 2 || !strings.Contains(stderr, "--listen") {
				t.Errorf("init --listen %q: exit %d %q, want 2 naming --listen", bad, code, stderr)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("init --listen %q wrote a config", bad)
			}
		}
		if code, _, stderr := runCLI("init", "--config", filepath.Join(t.TempDir(), "v6.yaml"), "--plugins-dir", plugins, "--listen", "[::1]:8741"); code != 0 {
			t.Errorf("init --listen [::1]:8741: exit %d %q", code, stderr)
		}
	})

	t.Run("pinned", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "twofactor.yaml")
		if code, out, stderr := runCLI("init", "--pin", "--config", path, "--plugins-dir", plugins); code != 0 || !strings.Contains(out, "pinned") {
			t.Fatalf("init --pin: exit %d %q %q", code, out, stderr)
		}
		_, digest, _ := runCLI("digest", "--config", path, "totp")
		text, _ := os.ReadFile(path)
		m := regexp.MustCompile(`(?m)^    sha256: ([0-9a-f]{64})$`).FindStringSubmatch(string(text))
		if m == nil || !strings.HasPrefix(digest, m[1]+"  ") {
			t.Fatalf("pin %v, digest %q\n%s", m, digest, text)
		}
		if code, out, stderr := runCLI("providers", "--config", path); code != 0 || !strings.Contains(out, "healthy") {
			t.Fatalf("pinned provider: exit %d %q %q", code, out, stderr)
		}
		// A changed binary (in a copy, so the other subtests keep theirs).
		other := pluginCopy(t)
		f, err := os.OpenFile(filepath.Join(other, "twofactor-provider-totp"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("changed"))
		f.Close()
		replaceIn(t, path, "dir: "+plugins, "dir: "+other)
		if code, out, _ := runCLI("providers", "--config", path); code == 0 || !strings.Contains(out, "does not match its pin") {
			t.Errorf("changed binary: exit %d %q", code, out)
		}
	})

	t.Run("pin refused", func(t *testing.T) {
		writable := pluginCopy(t)
		if err := os.Chmod(filepath.Join(writable, "twofactor-provider-totp"), 0o777); err != nil {
			t.Fatal(err)
		}
		for dir, want := range map[string]string{
			t.TempDir(): "no plugin binary at",
			writable:    "chmod go-w " + filepath.Join(writable, "twofactor-provider-totp"),
		} {
			path := filepath.Join(t.TempDir(), "twofactor.yaml")
			code, out, stderr := runCLI("init", "--pin", "--config", path, "--plugins-dir", dir)
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("init --pin on %s: exit %d %q %q, want %q", dir, code, out, stderr, want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("init --pin refused but wrote %s", path)
			}
		}
	})
}
