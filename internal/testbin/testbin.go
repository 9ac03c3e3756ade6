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
