package storetest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

func testRecoveryReplaceAndUse(t *testing.T, s framework.Store) {
	r := framework.RecoveryStore(s)
	old := [][]byte{[]byte("old-1"), []byte("old-2")}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", old, base); err != nil {
		t.Fatal(err)
	}
	if err := r.ReplaceRecoveryCodes(t.Context(), "bob", [][]byte{[]byte("old-1")}, base); err != nil {
		t.Fatal(err)
	}
	fresh := [][]byte{[]byte("new-1"), []byte("new-2"), []byte("new-3")}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", fresh, base); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
	if used, _ := r.UseRecoveryCode(t.Context(), "alice", []byte("old-1")); used {
		t.Error("a replaced code still works")
	}
	if used, _ := r.UseRecoveryCode(t.Context(), "alice", []byte("new-2")); !used {
		t.Error("a fresh code did not work")
	}
	if used, _ := r.UseRecoveryCode(t.Context(), "alice", []byte("new-2")); used {
		t.Error("a code worked twice")
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 2 {
		t.Errorf("count after use = %d, want 2", n)
	}
	if used, _ := r.UseRecoveryCode(t.Context(), "bob", []byte("new-1")); used {
		t.Error("bob used alice's code")
	}
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", nil, base); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "alice"); n != 0 {
		t.Errorf("count after dropping = %d", n)
	}
	if n, _ := r.CountRecoveryCodes(t.Context(), "bob"); n != 1 {
		t.Errorf("bob's codes changed: %d", n)
	}
}

func testRecoveryConcurrentUse(t *testing.T, s framework.Store) {
	r := framework.RecoveryStore(s)
	if err := r.ReplaceRecoveryCodes(t.Context(), "alice", [][]byte{[]byte("c")}, base); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			used, err := r.UseRecoveryCode(t.Context(), "alice", []byte("c"))
			if err != nil {
				t.Error(err)
			}
			if used {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d requests used one code", wins.Load())
	}
}
