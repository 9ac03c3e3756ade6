package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

func testAttemptsCountAndLock(t *testing.T, s framework.Store) {
	a := capability[framework.AttemptStore](t, s)
	if got, err := a.Attempts(t.Context(), "alice"); err != nil || got != (framework.Attempts{}) {
		t.Fatalf("fresh user: %+v, %v", got, err)
	}
	lock := func(n int) time.Time {
		if n >= 3 {
			return at(time.Duration(n) * time.Minute)
		}
		return time.Time{}
	}
	for i := 1; i <= 3; i++ {
		got, err := a.RecordFailure(t.Context(), "alice", lock)
		if err != nil || got.Failures != i {
			t.Fatalf("failure %d: %+v, %v", i, got, err)
		}
	}
	got, _ := a.Attempts(t.Context(), "alice")
	if got.Failures != 3 || timeDiff(got.LockedUntil, at(3*time.Minute)) != "" {
		t.Errorf("after 3 failures: %+v", got)
	}
	if other, _ := a.Attempts(t.Context(), "bob"); other.Failures != 0 {
		t.Errorf("bob has alice's failures: %+v", other)
	}
	if err := a.ResetAttempts(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Attempts(t.Context(), "alice"); got != (framework.Attempts{}) {
		t.Errorf("after reset: %+v", got)
	}
}

// testAttemptsConcurrent: failures recorded at once are all counted, as two
// replicas would record them.
func testAttemptsConcurrent(t *testing.T, s framework.Store) {
	a := capability[framework.AttemptStore](t, s)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.RecordFailure(t.Context(), "alice", func(int) time.Time { return time.Time{} }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := a.Attempts(t.Context(), "alice"); got.Failures != concurrency {
		t.Errorf("failures = %d, want %d", got.Failures, concurrency)
	}
}
