// Package groupcommit commits the writes of many concurrent requests in
// shared transactions: while one batch commits, the items that arrive
// wait, and the next batch takes all of them (up to a bound) and hands
// them to the store's write function, which commits them in one
// transaction. With a durable commit (an fsync) per transaction,
// throughput under concurrency is bounded by the disk's sync rate divided
// by the batch, not by it.
//
// There is no writer goroutine: the committing goroutine is a caller
// (leader/follower group commit). A caller that finds no batch in progress
// commits its own item at once, on its own goroutine; a caller that finds
// one in progress queues its item and sleeps; the leader, once its batch
// is durable, hands the queued items to the first of their callers, who
// leads the next batch, and then wakes its own batch's callers with their
// results. A dedicated writer goroutine cost two goroutine hand-offs per
// commit (caller to writer, writer back to caller), each of which, with
// an idle P, woke another OS thread: measured with the login bench at one
// request at a time, those wake-ups and the spinning threads they started
// were a large part of the host's CPU per login (see the commit message).
//
// A leader handed a batch with company (callers queued behind the last
// commit: others are deciding concurrently) first yields the processor a
// few times (gather) and takes into its batch what queued meanwhile: the
// decisions whose plugin call has just answered are runnable, and would
// otherwise miss this commit by microseconds and wait for the next fsync.
// It is PostgreSQL's commit_delay with commit_siblings, without a timer:
// the host runs with 1 ms of timer slack, so a sleep of a few
// microseconds would be a millisecond. A lone caller commits at once,
// with no yield: one request at a time waits for nothing. Measured with
// the login bench, SQLite, c=32, six ABAB pairs: 6.5 us less CPU per
// login and 3% more logins/s on average (five pairs of six in favour); c=1
// unchanged; PostgreSQL at c=32 the same within noise (two pairs).
//
// Each caller waits for its own item's result: nil once the batch it rode
// in is durable, its own error (a compare-and-swap conflict: the store
// wrote nothing of that item), or the batch's error, which fails every
// item of the batch. A caller whose context has ended before its item is
// queued leaves; once queued, the item is written and the caller waits
// for the result, so what was answered is what was written.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// ErrClosed is the result of an item offered after Stop.
var ErrClosed = errors.New("store closed")

// WriteFunc commits a batch in one transaction. It returns one error per
// item (nil for written) and, if the whole batch failed, that error.
type WriteFunc[T any] func(batch []T) (itemErrs []error, batchErr error)

// Writer commits batches of T, one at a time.
type Writer[T any] struct {
	write WriteFunc[T]
	max   int
	// gather runs before a leader with company writes (see the package
	// comment); a test replaces it to queue items at that moment.
	gather func()

	mu      sync.Mutex
	leading bool          // a batch is being committed
	queue   []*request[T] // waiting for the next batch, in arrival order
	closed  bool
	stopped chan struct{} // made by Stop while a batch runs, closed when none does
}

type request[T any] struct {
	item T
	err  error
	// wake is signalled once: with err set (the result), or with batch set
	// (this caller leads batch, its own item first).
	wake  chan struct{}
	batch []*request[T]
}

// New returns a writer of batches of at most max items.
func New[T any](max int, write WriteFunc[T]) *Writer[T] {
	return &Writer[T]{write: write, max: max, gather: yield}
}

// gatherYields is how many times a leader with company yields the
// processor before it writes: each lets the runnable goroutines run until
// they block (one whose decision is ready queues its item). 2, 8 and 16,
// one pass each, were within the noise of 4.
const gatherYields = 4

func yield() {
	for range gatherYields {
		runtime.Gosched()
	}
}

// Do offers item and waits for its result.
func (w *Writer[T]) Do(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request[T]{item: item}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if !w.leading {
		// Nothing in progress: commit at once, on this goroutine.
		w.leading = true
		w.mu.Unlock()
		w.lead([]*request[T]{r})
		return r.err
	}
	r.wake = make(chan struct{}, 1)
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	<-r.wake
	if r.batch != nil {
		w.lead(r.batch)
	}
	return r.err
}

// lead commits batch (the caller's own request first), answers the others
// of batch, and passes the lead to the next batch, if any.
func (w *Writer[T]) lead(batch []*request[T]) {
	if len(batch) > 1 && len(batch) < w.max {
		w.gather()
		w.mu.Lock()
		if n := min(len(w.queue), w.max-len(batch)); n > 0 {
			batch = append(batch, w.queue[:n]...)
			w.queue = w.queue[n:]
			if len(w.queue) == 0 {
				w.queue = nil // let the backing array go
			}
		}
		w.mu.Unlock()
	}
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	errs, err, panicked := w.run(items)
	for i, r := range batch {
		switch {
		case err != nil:
			r.err = err
		case i < len(errs):
			r.err = errs[i]
		}
	}

	for _, r := range batch[1:] {
		r.wake <- struct{}{}
	}
	w.mu.Lock()
	if n := min(len(w.queue), w.max); n > 0 {
		next := w.queue[:n:n]
		w.queue = w.queue[n:]
		if len(w.queue) == 0 {
			w.queue = nil // let the backing array go
		}
		w.mu.Unlock()
		// Leadership passes from caller to caller, so every queued item
		// is written, after Stop too. Woken last, the next leader is the
		// goroutine this P runs next (the runtime's runnext slot), while
		// the callers answered above may be taken by another P.
		next[0].batch = next
		next[0].wake <- struct{}{}
	} else {
		w.leading = false
		if w.stopped != nil {
			close(w.stopped)
		}
		w.mu.Unlock()
	}
	if panicked != nil {
		// Everyone else is answered and the lead passed on: the panic
		// is this caller's alone.
		panic(panicked)
	}
}

// ErrWritePanicked is the result of the items of a batch whose write
// panicked (the panic goes on on the leader's goroutine).
var ErrWritePanicked = errors.New("store write panicked")

// run calls write, turning a panic into the batch's error: the batch's
// other callers, the ones queued behind it and every later one would
// otherwise wait forever for a leader that is gone.
func (w *Writer[T]) run(items []T) (errs []error, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			errs, err, panicked = nil, fmt.Errorf("%w: %v", ErrWritePanicked, p), p
		}
	}()
	errs, err = w.write(items)
	return errs, err, nil
}

// Stop refuses new items and waits until every item already offered is
// written and answered.
func (w *Writer[T]) Stop() {
	w.mu.Lock()
	w.closed = true
	if !w.leading {
		w.mu.Unlock()
		return
	}
	if w.stopped == nil {
		w.stopped = make(chan struct{})
	}
	ch := w.stopped
	w.mu.Unlock()
	<-ch
}
