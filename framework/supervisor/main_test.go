package supervisor_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// TestMain builds the real plugin binaries once: every test here runs a
// real plugin process and stops, kills or removes it for real.
func TestMain(m *testing.M) { testbin.Main(m) }

// totpCopy copies the TOTP plugin into a folder of its own, so the test
// finds its processes (and only its) by folder.
func totpCopy(t *testing.T) string {
	t.Helper()
	return filepath.Join(testbin.Copy(t, supervisor.BinaryPrefix+"totp"), supervisor.BinaryPrefix+"totp")
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
	return p, testbin.OnlyProcess(t, filepath.Dir(bin))
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
