package supervisor_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// TestMain builds the real plugin binaries once: every test here runs a
// real plugin process and stops, kills or removes it for real.
func TestMain(m *testing.M) {
	if _, err := testbin.Dir(); err != nil {
		fmt.Fprintln(os.Stderr, "building plugin binaries:", err)
		testbin.Cleanup()
		os.Exit(1)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// totpCopy copies the TOTP plugin into a folder of its own, so the test
// finds its processes (and only its) by folder.
func totpCopy(t *testing.T) string {
	t.Helper()
	dir, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(filepath.Join(dir, supervisor.BinaryPrefix+"totp"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), supervisor.BinaryPrefix+"totp")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fast is the supervision of these tests: quick pings, short grace.
var fast = supervisor.Options{HealthInterval: 200 * time.Millisecond, KillGrace: 300 * time.Millisecond}

// startTOTP starts a supervised TOTP plugin with a 1 s call deadline and
// returns it with the pid of its process.
func startTOTP(t *testing.T, bin string) (*supervisor.Process, int) {
	t.Helper()
	opts := fast
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
	p := supervisor.New(supervisor.ProviderSpec{Name: "totp", Binary: bin, Timeout: time.Second,
		Settings: sdk.Settings{"issuer": "ACME"}}, opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, onePid(t, filepath.Dir(bin))
}

func onePid(t *testing.T, dir string) int {
	t.Helper()
	pids := testbin.Processes(dir)
	if len(pids) != 1 {
		t.Fatalf("plugin processes in %s: %v, want one", dir, pids)
	}
	return pids[0]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopProcess SIGSTOPs pid, and SIGCONTs it at cleanup so that a failing
// test does not leave a stopped process behind.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
