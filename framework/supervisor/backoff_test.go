package supervisor_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/sdk"
)

// TestStartFailuresBackOffAsACrashLoop: failed starts follow the restart
// policy a crash loop does (TestCrashLoopBacksOff): the first failure is
// retried at once, as a single crash is, and each next waits 200 ms,
// doubling. The clock is the test's and stands still: only the policy
// decides whether a call may start the plugin again.
func TestStartFailuresBackOffAsACrashLoop(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	opts := fast
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	opts.HealthInterval = time.Hour // no start but the test's calls
	p := supervisor.New(supervisor.ProviderSpec{Name: "totp", Binary: filepath.Join(t.TempDir(), supervisor.BinaryPrefix+"totp"),
		Timeout: time.Second, Settings: sdk.Settings{"issuer": "ACME"}}, opts)
	t.Cleanup(p.Stop)
	if err := p.Start(context.Background()); err == nil {
		t.Fatal("a plugin without a binary started")
	}
	restarts := 0
	for _, wait := range []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if wait > 0 {
			err := verify(p)
			if supervisor.KindOf(err) != supervisor.KindUnavailable || !strings.Contains(err.Error(), "next restart attempt in "+wait.String()) {
				t.Fatalf("after %d failed restarts: %v, want a wait of %s", restarts, err, wait)
			}
			if st := p.Status(); st.Restarts != restarts {
				t.Fatalf("a call in the backoff restarted the plugin: %d restarts, want %d", st.Restarts, restarts)
			}
			advance(wait)
		}
		if err := verify(p); err == nil || strings.Contains(err.Error(), "next restart attempt") {
			t.Fatalf("after %d failed restarts and a wait of %s: %v, want a restart that fails", restarts, wait, err)
		}
		restarts++
		if st := p.Status(); st.Restarts != restarts {
			t.Fatalf("%d restarts, want %d", st.Restarts, restarts)
		}
	}
}
