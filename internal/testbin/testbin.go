// Package testbin builds this repository's binaries once per test process,
// so integration tests start the real host and real plugin processes
// rather than in-process fakes.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	err  error
)

// Dir builds every command under cmd/ into one temporary folder (removed
// by Cleanup) and returns it. It is safe to call from many tests.
func Dir() (string, error) {
	once.Do(func() {
		dir, err = os.MkdirTemp("", "twofactor-bin-")
		if err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = root
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build ./cmd/...: %v\n%s", berr, out)
			return
		}
		// The host refuses a plugin that group or others can write
		// (framework/binperm); go build's modes follow the umask.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if cerr := os.Chmod(filepath.Join(dir, e.Name()), 0o755); cerr != nil && err == nil {
				err = cerr
			}
		}
	})
	return dir, err
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Main is the TestMain of a package whose tests run the real binaries: it
// builds them once, runs the tests, removes them and exits.
func Main(m *testing.M) {
	if _, err := Dir(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		Cleanup()
		os.Exit(1)
	}
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Copy copies the named built binaries into a folder of tb's own and
// returns it, so a test can tell its processes (by folder) from other
// tests'.
func Copy(tb testing.TB, names ...string) string {
	tb.Helper()
	src, err := Dir()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
