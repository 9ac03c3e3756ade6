package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"slices"
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
	waitQueued(t, w, n-1)
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

// waitQueued waits until n items wait for the next batch.
func waitQueued[T any](t *testing.T, w *Writer[T], n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); w.queued() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items queued", w.queued(), n)
		}
		runtime.Gosched()
	}
}

func (w *Writer[T]) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

func (w *Writer[T]) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// TestBatchBound: what queued behind a batch is written in batches of at
// most max, in arrival order, every item once.
func TestBatchBound(t *testing.T) {
	rec := newRecorder()
	w := New(4, rec.write)
	defer w.Stop()
	var wg sync.WaitGroup
	wg.Go(func() { w.Do(context.Background(), 0) })
	<-rec.held
	for i := 1; i <= 10; i++ {
		wg.Go(func() {
			if err := w.Do(context.Background(), i); err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		})
		waitQueued(t, w, i) // one at a time: the queue's order is known
	}
	close(rec.release)
	wg.Wait()
	if want := []int{1, 4, 4, 2}; !slices.Equal(rec.sizes, want) {
		t.Errorf("batch sizes %v, want %v", rec.sizes, want)
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(rec.written, want) {
		t.Errorf("written %v, want %v", rec.written, want)
	}
}

// recorder is a write function that records each batch; its first batch
// waits for release, so that what follows queues behind it.
type recorder struct {
	mu             sync.Mutex
	sizes, written []int
	held, release  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{held: make(chan struct{}), release: make(chan struct{})}
}

func (r *recorder) write(batch []int) ([]error, error) {
	r.mu.Lock()
	first := r.sizes == nil
	r.sizes = append(r.sizes, len(batch))
	r.written = append(r.written, batch...)
	r.mu.Unlock()
	if first {
		close(r.held)
		<-r.release
	}
	return nil, nil
}

// TestStopWritesWhatWasQueued: Stop refuses new items at once, and
// returns only after every item offered before it is written; each of
// their callers gets nil.
func TestStopWritesWhatWasQueued(t *testing.T) {
	release, held := make(chan struct{}), make(chan struct{})
	var written atomic.Int32
	w := New(2, func(batch []int) ([]error, error) {
		if written.Add(int32(len(batch))) == 1 {
			close(held)
			<-release
		}
		return nil, nil
	})
	const n = 5
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := w.Do(context.Background(), i); err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		})
		if i == 0 {
			<-held
		}
	}
	waitQueued(t, w, n-1)
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	for deadline := time.Now().Add(10 * time.Second); !w.isClosed(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("Stop did not close the writer")
		}
	}
	if err := w.Do(context.Background(), 99); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Stop: %v", err)
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned while a batch was still being written")
	default:
	}
	close(release)
	<-stopped
	if got := written.Load(); got != n {
		t.Errorf("%d items written when Stop returned, want %d", got, n)
	}
	wg.Wait() // every caller answered (nil, checked above)
	w.Stop()  // again: returns at once
}

// TestDoneContextLeaves: a caller whose context has ended is not queued,
// and its item is not written.
func TestDoneContextLeaves(t *testing.T) {
	var written atomic.Int32
	w := New(8, func(batch []int) ([]error, error) { written.Add(int32(len(batch))); return nil, nil })
	defer w.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a done context: %v", err)
	}
	if err := w.Do(context.Background(), 2); err != nil {
		t.Errorf("Do: %v", err)
	}
	if got := written.Load(); got != 1 {
		t.Errorf("%d items written, want 1", got)
	}
}

// TestConcurrentCallers: many callers at once (run it with -race), every
// item written exactly once, in batches of at most max, no two batches at
// the same time, each caller answered with its own item's error.
func TestConcurrentCallers(t *testing.T) {
	const callers, each, max = 16, 200, 5
	var inWrite atomic.Int32
	seen := make([]atomic.Int32, callers*each)
	errOdd := errors.New("odd")
	w := New(max, func(batch []int) ([]error, error) {
		if inWrite.Add(1) != 1 {
			t.Error("two batches written at once")
		}
		defer inWrite.Add(-1)
		if len(batch) > max {
			t.Errorf("batch of %d, max %d", len(batch), max)
		}
		errs := make([]error, len(batch))
		for i, v := range batch {
			seen[v].Add(1)
			if v%2 == 1 {
				errs[i] = errOdd
			}
		}
		return errs, nil
	})
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for k := range each {
				v := c*each + k
				if err := w.Do(context.Background(), v); (v%2 == 1) != errors.Is(err, errOdd) {
					t.Errorf("item %d: %v", v, err)
				}
			}
		})
	}
	wg.Wait()
	w.Stop()
	for v := range seen {
		if n := seen[v].Load(); n != 1 {
			t.Errorf("item %d written %d times", v, n)
		}
	}
}

// TestLeaderGathers: a leader handed a batch with company gathers first
// and takes into its batch what queued meanwhile, in arrival order and up
// to max (the rest rides the next batch); a lone caller commits at once,
// without gathering.
func TestLeaderGathers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		max       int
		wantSizes []int
	}{
		{"all join", 8, []int{1, 5}},
		{"up to max", 4, []int{1, 4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			w := New(tc.max, rec.write)
			defer w.Stop()
			var wg sync.WaitGroup
			var gathers atomic.Int32
			queuedLate := make(chan bool, 1)
			w.gather = func() {
				if gathers.Add(1) > 1 {
					return
				}
				// Callers whose decisions become ready while the leader
				// yields: they queue now, one at a time (a known order).
				ok := true
				for i := 10; i < 13; i++ {
					wg.Go(func() { w.Do(context.Background(), i) })
					ok = ok && queuedWithin(w, i-9, 10*time.Second)
				}
				queuedLate <- ok
			}
			wg.Go(func() { w.Do(context.Background(), 0) }) // alone: commits at once
			<-rec.held
			for i := 1; i <= 2; i++ {
				wg.Go(func() { w.Do(context.Background(), i) })
				waitQueued(t, w, i)
			}
			close(rec.release)
			wg.Wait()
			if !<-queuedLate {
				t.Fatal("the late callers did not queue")
			}
			if g := gathers.Load(); g < 1 {
				t.Errorf("gathered %d times, want at least once (the leader with company)", g)
			}
			if !slices.Equal(rec.sizes, tc.wantSizes) {
				t.Errorf("batch sizes %v, want %v", rec.sizes, tc.wantSizes)
			}
			if want := []int{0, 1, 2, 10, 11, 12}; !slices.Equal(rec.written, want) {
				t.Errorf("written %v, want %v", rec.written, want)
			}
		})
	}
}

// TestLoneCallerDoesNotGather: one caller at a time never waits for
// company.
func TestLoneCallerDoesNotGather(t *testing.T) {
	w := New(8, func(batch []int) ([]error, error) { return nil, nil })
	defer w.Stop()
	w.gather = func() { t.Error("a lone caller gathered") }
	for i := range 3 {
		if err := w.Do(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
}

// queuedWithin reports whether n items wait for the next batch within d;
// for goroutines other than the test's, which must not call t.Fatal.
func queuedWithin[T any](w *Writer[T], n int, d time.Duration) bool {
	for deadline := time.Now().Add(d); w.queued() < n; {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
	return true
}

// TestPanickingWriteAnswersEveryone: a write that panics (a driver bug, a
// nil dereference in the store) fails its own batch's items, passes the
// lead on to the callers that queued behind it, and panics on its
// leader's goroutine only. Before, leading stayed true and no one was
// ever woken: the followers of the batch, the callers queued behind it
// and every later caller waited forever, whatever their deadlines (an
// HTTP server recovers the leader's panic and goes on serving).
func TestPanickingWriteAnswersEveryone(t *testing.T) {
	release, held := make(chan struct{}), make(chan struct{})
	var batches atomic.Int32
	w := New(8, func(batch []int) ([]error, error) {
		switch batches.Add(1) {
		case 1: // item 0 alone: hold it until 1 and 2 queue, then panic
			close(held)
			<-release
			panic("write panicked")
		case 2: // 1 and 2, led by 1: panics with company
			panic("write panicked again")
		}
		return nil, nil
	})
	w.gather = func() {}
	leaderPanicked := make(chan any, 2)
	do := func(i int) error {
		defer func() {
			if p := recover(); p != nil {
				leaderPanicked <- p
			}
		}()
		return w.Do(context.Background(), i)
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result, 3)
	go func() { results <- result{0, do(0)} }()
	<-held
	for i := 1; i <= 2; i++ {
		go func() { results <- result{i, do(i)} }()
		waitQueued(t, w, i)
	}
	close(release)
	timeout := time.After(10 * time.Second)
	for range 3 {
		select {
		case r := <-results:
			// 0 and 1 led and panicked; 2 rode 1's batch: its item
			// was not written, and it must not hear nil.
			if r.i == 2 && r.err == nil {
				t.Error("item 2, in a batch whose write panicked, answered nil")
			}
		case <-timeout:
			t.Fatalf("callers still blocked after the write panicked (%d batches written)", batches.Load())
		}
	}
	if n := len(leaderPanicked); n != 2 {
		t.Errorf("%d leaders panicked, want 2 (one per batch)", n)
	}
	// The writer still works.
	done := make(chan error, 1)
	go func() { done <- w.Do(context.Background(), 3) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Do after the panics: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do after the panics is blocked forever")
	}
	w.Stop()
}
