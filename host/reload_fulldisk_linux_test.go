package host_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// tmpfsDir mounts a tmpfs of the given size, private to root, for a full
// disk. It skips unless the test may mount (root, as CI runs).
func tmpfsDir(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs for a full disk needs root (CI runs as root): sudo go test -run " + t.Name() + " ./host/")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): run as root where mount is allowed", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file into dir until the disk is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestReloadRefusesConfigCutByFullDisk: the config's folder is full (a
// real tmpfs) when the admin rewrites it one comment longer. The rewrite
// truncates the file and fails with ENOSPC after the first page, inside
// the last line, policy.client.require, which in the cut file has no
// value: read as false. The watcher wakes at the close and reloads. The
// running configuration must stay (client users without a factor are
// still told to enroll, not let in), and the refusal names the cause.
func TestReloadRefusesConfigCutByFullDisk(t *testing.T) {
	plugins := pluginCopy(t)
	base := writeConfig(t, plugins, totpClients)
	text, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	// The store stays where writeConfig made it, off the small disk.
	db := filepath.Join(filepath.Dir(base), "twofactor.db")
	running := strings.Replace(string(text), "dsn: twofactor.db", "dsn: "+db, 1) + "policy:\n  client:\n    require: true\n"
	disk := tmpfsDir(t, 4*4096)
	path := filepath.Join(disk, "twofactor.yaml")
	if err := os.WriteFile(path, []byte(running), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHostAt(t, plugins, path, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	wantDecision(t, h.challenge("carol", map[string]string{"audience": "client"}), "enroll", "enrollment_required")

	// The new file: a comment at the top makes it cross the first page
	// exactly after "require:" on its last line.
	tail := "policy:\n  client:\n    require:"
	body := strings.TrimSuffix(running, tail+" true\n")
	pad := 4096 - len(body) - len(tail) - len("#\n")
	if pad < 0 {
		t.Fatalf("the config is %d bytes, more than a page", len(running))
	}
	next := "#" + strings.Repeat("-", pad) + "\n" + body + tail + " true\n"
	fill(t, disk)
	if err := os.WriteFile(path, []byte(next), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("rewrite on a full disk: %v, want ENOSPC", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasSuffix(string(b), "require:") {
		t.Fatalf("the disk cut the file elsewhere (%d bytes): ...%q", len(b), b[max(0, len(b)-40):])
	}
	ev := waitReload(t, h.svc)
	// Refused on either count: no newline at its end, and a key with no
	// value (config's own test has a file cut at a line's end).
	if ev.Applied || ev.Err == nil || !cutNamed(ev.Err.Error()) {
		t.Errorf("reload of the cut file: applied %v, error %v; want it refused as cut short", ev.Applied, ev.Err)
	}
	wantDecision(t, h.challenge("carol", map[string]string{"audience": "client"}), "enroll", "enrollment_required")
	refused := 0
	for _, e := range h.do("GET", "/v1/audit?limit=1000", adminKey, nil).body["entries"].([]any) {
		if m := e.(map[string]any); m["event"] == "config.reload" && m["outcome"] == "refused" && cutNamed(toJSON(m)) {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d refused reloads audited naming the cut, want 1", refused)
	}

	// Room again, the whole file written: it applies.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload of the whole file: %+v", ev)
	}
}

// cutNamed: a refusal names why the file looks cut short.
func cutNamed(msg string) bool {
	return strings.Contains(msg, "newline") || strings.Contains(msg, "has no value")
}
