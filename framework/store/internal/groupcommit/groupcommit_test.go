package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchesAndResults: concurrent items share batches, each caller gets
// its own item's error, and a batch error fails every item of its batch.
func TestBatchesAndResults(t *testing.T) {
	errOdd := errors.New("odd")
	release, held := make(chan struct{}), make(chan struct{})
	var batches atomic.Int32
	w := New(64, func(batch []int) ([]error, error) {
		if batches.Add(1) == 1 {
			close(held)
			<-release // hold the first batch so the others pile up
		}
		errs := make([]error, len(batch))
		for i, v := range batch {
			if v%2 == 1 {
				errs[i] = errOdd
			}
		}
		return errs, nil
	})
	defer w.Stop()
	const n = 50
	var wg sync.WaitGroup
	results := make([]error, n)
	wg.Go(func() { results[0] = w.Do(context.Background(), 0) })
	<-held
	for i := 1; i < n; i++ {
		wg.Go(func() { results[i] = w.Do(context.Background(), i) })
	}
	for deadline := time.Now().Add(10 * time.Second); len(w.ch) < n-1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items queued", len(w.ch), n-1)
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, err := range results {
		if (i%2 == 1) != errors.Is(err, errOdd) {
			t.Errorf("item %d: %v", i, err)
		}
	}
	if b := batches.Load(); b != 2 {
		t.Errorf("%d batches for %d items, want 2: the first, then all that queued behind it", b, n)
	}

	failed := New(8, func(batch []int) ([]error, error) { return nil, errors.New("disk full") })
	if err := failed.Do(context.Background(), 1); err == nil || err.Error() != "disk full" {
		t.Errorf("batch error: %v", err)
	}
	failed.Stop()
	if err := failed.Do(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after Stop: %v", err)
	}
}
