package storetest

// The enrollment table under simultaneous writers: one compare-and-swap
// wins, whatever the interleaving.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

func testConcurrentUpdate(t *testing.T, s framework.Store) {
	// This is the single-use guarantee: two replicas accepting the same code
	// both Update from the version they read; exactly one may win.
	cur := active(t, s, "alice", "totp")
	results, errs := burst.Run2(concurrency, func(i int) (framework.Enrollment, error) {
		in := cur
		in.State = fmt.Appendf(nil, "writer %d", i)
		in.UpdatedAt = at(time.Hour + time.Duration(i)*time.Second)
		return s.Update(t.Context(), in)
	})

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, framework.ErrConflict):
			t.Errorf("writer %d: error %v, want nil or %v", i, err, framework.ErrConflict)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded")
	}
	want := cur
	want.State = fmt.Appendf(nil, "writer %d", winner)
	want.UpdatedAt = at(time.Hour + time.Duration(winner)*time.Second)
	want.Version = cur.Version + 1
	check(t, "winning Update result", results[winner], want)
	check(t, "Get after racing Updates", mustGet(t, s, "alice", "totp"), want)
}

func testConcurrentPutPending(t *testing.T, s framework.Store) {
	// Each PutPending is atomic, so racing ones serialise: one inserts, the
	// rest replace in turn, and every version from the first up is handed
	// out once.
	got, errs := burst.Run2(concurrency, func(i int) (framework.Enrollment, error) {
		return s.PutPending(t.Context(), newPending("alice", "totp", fmt.Appendf(nil, "writer %d", i)))
	})
	versions := make([]int64, concurrency)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		versions[i] = got[i].Version
	}
	slices.Sort(versions)
	first := firstVersion(t, versions[0])
	for i, v := range versions {
		if v != first+int64(i) {
			t.Fatalf("versions handed out = %v, want %d consecutive ones each once", versions, concurrency)
		}
	}
	if got := mustGet(t, s, "alice", "totp"); got.Version != first+concurrency-1 {
		t.Fatalf("final version = %d, want %d", got.Version, first+concurrency-1)
	}
}

func testConcurrentPutPendingOverActive(t *testing.T, s framework.Store) {
	act := active(t, s, "alice", "totp")
	_, errs := burst.Run2(concurrency, func(i int) (framework.Enrollment, error) {
		return s.PutPending(t.Context(), newPending("alice", "totp", fmt.Appendf(nil, "writer %d", i)))
	})
	for i, err := range errs {
		if !errors.Is(err, framework.ErrAlreadyActive) {
			t.Errorf("writer %d: error %v, want %v", i, err, framework.ErrAlreadyActive)
		}
	}
	check(t, "active enrollment after racing PutPending", mustGet(t, s, "alice", "totp"), act)
}
