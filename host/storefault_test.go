package host_test

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// waitFor calls try until it reports done or within passes (then the test
// fails with the last answer), and returns how long that took.
func (h *testHost) waitFor(what string, within time.Duration, try func() (response, bool)) time.Duration {
	h.t.Helper()
	start := time.Now()
	for {
		r, done := try()
		if done {
			return time.Since(start)
		}
		if time.Since(start) > within {
			h.t.Fatalf("%s: still %d %v after %v", what, r.status, r.body, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pollStatus asks path until it answers want.
func (h *testHost) pollStatus(path string, want int, within time.Duration) time.Duration {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("GET %s answering %d", path, want), within, func() (response, bool) {
		r := h.do("GET", path, "", nil)
		return r, r.status == want
	})
}

// wantStoreUnavailable checks the answer a storage fault must give:
// 503 store_unavailable with a Retry-After, never 500 and never allow.
func wantStoreUnavailable(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.errCode() != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d %v (Retry-After %q); want 503 store_unavailable with Retry-After", what, r.status, r.body, r.header.Get("Retry-After"))
	}
}

// TestDeletedDatabaseFile: the SQLite file deleted (moved away) or
// replaced by another file under a running host (a mistaken cleanup, a
// restore over the live file). SQLite would go on writing to the inode it
// has open, so everything written from then on would vanish at the next
// restart: /readyz turns 503 within 5 s and every request answers 503
// store_unavailable. The file put back, the host serves again. And serve
// refuses to start on a missing file (TestServeRefusesMissingStore).
func TestDeletedDatabaseFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(db, aside string) error
	}{
		{"moved away", func(db, aside string) error { return os.Rename(db, aside) }},
		{"replaced by a copy", func(db, aside string) error {
			b, err := os.ReadFile(db)
			if err != nil {
				return err
			}
			if err := os.Link(db, aside); err != nil {
				return err
			}
			if err := os.WriteFile(db+".copy", b, 0o600); err != nil {
				return err
			}
			return os.Rename(db+".copy", db)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHost(t, totpClients)
			secret := h.enroll("alice")
			db := filepath.Join(filepath.Dir(h.configPath), "twofactor.db")
			aside := db + ".aside"
			if err := tc.fault(db, aside); err != nil {
				t.Fatal(err)
			}
			took := h.pollStatus("/readyz", http.StatusServiceUnavailable, 5*time.Second)
			t.Logf("/readyz 503 %v after the fault", took.Round(time.Millisecond))
			h.clock.Add(30 * time.Second)
			code := h.code(secret)
			wantStoreUnavailable(t, "verify", h.verify("alice", code))
			wantStoreUnavailable(t, "enroll", h.do("POST", "/v1/users/bob/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"}))

			if err := os.Rename(aside, db); err != nil {
				t.Fatal(err)
			}
			h.pollStatus("/readyz", http.StatusOK, 5*time.Second)
			if v := h.verify("alice", code); v.str("outcome") != "allow" {
				t.Fatalf("verify with the file back: %d %v", v.status, v.body)
			}
			if v := h.verify("alice", code); v.str("reason") != "replayed" {
				t.Fatalf("replay with the file back: %d %v", v.status, v.body)
			}
		})
	}
}

// TestServeRefusesMissingStore: serve on a missing SQLite file, or on an
// empty store nobody initialized, refuses to start and says what to do,
// rather than creating an empty store in which nobody is enrolled; doctor
// fails the storage check with the same fix; init makes it servable.
func TestServeRefusesMissingStore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(db string) error
		want  string
	}{
		{"missing file", func(db string) error { return os.Remove(db) }, "does not exist"},
		{"empty file", func(db string) error { return os.WriteFile(db, nil, 0o600) }, "never initialized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugins := pluginCopy(t)
			path := writeConfig(t, plugins, totpClients)
			db := filepath.Join(filepath.Dir(path), "twofactor.db")
			for _, f := range []string{db + "-wal", db + "-shm"} {
				os.Remove(f)
			}
			if err := tc.setup(db); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI("serve", "--config", path)
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "restore it from the backup") ||
				!strings.Contains(stderr, "twofactor init --config") {
				t.Fatalf("exit %d, stderr %q; want 1, %q, and both fixes", code, stderr, tc.want)
			}
			if tc.name == "missing file" {
				if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("serve created %s: %v", db, err)
				}
			}
			if code, out, _ := runCLI("doctor", "--config", path); code != 1 || !strings.Contains(out, "fix: the store holds every enrollment") {
				t.Fatalf("doctor: exit %d, %q; want 1 and the fix", code, out)
			}
			// init is the fix: it creates and marks the store.
			if code, out, stderr := runCLI("init", "--config", path); code != 0 || !strings.Contains(out, "install id") {
				t.Fatalf("init: exit %d, %q %q", code, out, stderr)
			}
			startHostAt(t, plugins, path, hclog.NewNullLogger()).pollStatus("/readyz", http.StatusOK, 10*time.Second)
		})
	}
}

// TestUpgradeFromPreviousRelease: a store written by the release before
// the install mark (testdata/release-ed1a36d: alice enrolled in TOTP) is
// marked by its migration on the first start and serves alice, her code
// once.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	fixture := filepath.Join("testdata", "release-ed1a36d")
	key, err := os.ReadFile(filepath.Join(fixture, "encryption_key"))
	if err != nil {
		t.Fatal(err)
	}
	url, err := os.ReadFile(filepath.Join(fixture, "otpauth.txt"))
	if err != nil {
		t.Fatal(err)
	}
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, "providers:\n  totp: {enabled: true, staff: true, clients: true, settings: {issuer: twofactor-dev}}\n")
	dir := filepath.Dir(path)
	replaceLine(t, path, "encryption_key:", "encryption_key: "+strings.TrimSpace(string(key)))
	db := filepath.Join(dir, "twofactor.db")
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		os.Remove(f)
	}
	old, err := os.ReadFile(filepath.Join(fixture, "twofactor.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, old, 0o600); err != nil {
		t.Fatal(err)
	}

	h := startHostAt(t, plugins, path, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	secret := strings.TrimSpace(string(url))
	secret = secret[strings.Index(secret, "secret=")+len("secret="):]
	if i := strings.IndexByte(secret, '&'); i >= 0 {
		secret = secret[:i]
	}
	l := h.do("GET", "/v1/users/alice/enrollments", appKey, nil)
	if l.status != http.StatusOK || !strings.Contains(toJSON(l.body), `"active"`) {
		t.Fatalf("alice's enrollments after the upgrade: %d %v", l.status, l.body)
	}
	code := h.code(secret)
	if v := h.verify("alice", code); v.str("outcome") != "allow" {
		t.Fatalf("verify after the upgrade: %d %v", v.status, v.body)
	}
	if v := h.verify("alice", code); v.str("reason") != "replayed" {
		t.Fatalf("replay after the upgrade: %d %v", v.status, v.body)
	}
}

func replaceLine(t *testing.T, path, prefix, line string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i], found = line, true
		}
	}
	if !found {
		t.Fatalf("%s has no line starting with %q", path, prefix)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tmpfs mounts a small tmpfs for the test, or skips when that is not
// possible (not root, no mount).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// startHostOnDir runs a host whose SQLite file is in dir.
func startHostOnDir(t *testing.T, dir string) *testHost {
	t.Helper()
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	db := filepath.Join(dir, "twofactor.db")
	replaceLine(t, path, "storage:", "storage: {driver: sqlite, dsn: '"+db+"'}")
	initStore(t, path)
	return startHostAt(t, plugins, path, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Error}))
}

// integrityCheck runs PRAGMA integrity_check on the database at path.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
}

// TestDiskFull: the database's file system fills up under a running host.
// /readyz turns 503, requests answer 503 store_unavailable (never 500),
// no code is allowed without its use being stored (an allowed code is
// replayed afterwards), and once space returns the host serves again on
// a database that passes integrity_check.
func TestDiskFull(t *testing.T) {
	dir := tmpfs(t, "4m")
	h := startHostOnDir(t, dir)
	secret := h.enroll("alice")
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	h.pollStatus("/readyz", http.StatusServiceUnavailable, 5*time.Second)

	// Each allowed code with the time it was allowed at: it is replayed
	// at that time, inside the provider's window, where only its stored
	// use tells a replay from a fresh code (an older code is refused as
	// invalid_code whatever was stored). The background checkpoint lets
	// the log be reused from its start, so commits can succeed on the full
	// disk early in the loop, ten steps and more before the replays.
	type allowedCode struct {
		code string
		at   time.Time
	}
	var allowed []allowedCode
	refused := 0
	for range 20 {
		h.clock.Add(30 * time.Second)
		code := h.code(secret)
		r := h.verify("alice", code)
		switch {
		case r.status == http.StatusOK && r.str("outcome") == "allow":
			allowed = append(allowed, allowedCode{code, h.clock.Now()})
		case r.status == http.StatusOK:
		default:
			wantStoreUnavailable(t, "verify on a full disk", r)
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no request noticed the full disk")
	}
	t.Logf("on a full disk: %d verifies refused with 503, %d allowed (their state stored)", refused, len(allowed))

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	h.pollStatus("/readyz", http.StatusOK, 5*time.Second)
	end := h.clock.Now()
	for _, a := range allowed {
		h.clock.Add(a.at.Sub(h.clock.Now()))
		if v := h.verify("alice", a.code); v.str("reason") != "replayed" {
			t.Fatalf("a code allowed on the full disk is not remembered: %d %v", v.status, v.body)
		}
	}
	h.clock.Add(end.Sub(h.clock.Now()) + 30*time.Second)
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Fatalf("verify after space returned: %d %v", v.status, v.body)
	}
	integrityCheck(t, filepath.Join(dir, "twofactor.db"))
}

// TestReadOnlyDatabase: the database and its log made immutable
// (chattr +i: read-only even for root, and for descriptors already open)
// under a running host. /readyz turns 503 and verifies answer 503
// store_unavailable, never allow; writable again, the host serves.
func TestReadOnlyDatabase(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed (e2fsprogs)")
	}
	dir := tmpfs(t, "16m")
	h := startHostOnDir(t, dir)
	secret := h.enroll("alice")
	db := filepath.Join(dir, "twofactor.db")
	files := []string{db, db + "-wal"}
	chattr := func(flag string) {
		t.Helper()
		if out, err := exec.Command("chattr", append([]string{flag}, files...)...).CombinedOutput(); err != nil {
			t.Skipf("chattr %s: %v: %s", flag, err, out)
		}
	}
	chattr("+i")
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, files...)...).Run() })
	h.pollStatus("/readyz", http.StatusServiceUnavailable, 5*time.Second)
	h.clock.Add(30 * time.Second)
	code := h.code(secret)
	wantStoreUnavailable(t, "verify on a read-only database", h.verify("alice", code))

	chattr("-i")
	h.pollStatus("/readyz", http.StatusOK, 5*time.Second)
	if v := h.verify("alice", code); v.str("outcome") != "allow" {
		t.Fatalf("verify once writable: %d %v", v.status, v.body)
	}
	integrityCheck(t, db)
}
