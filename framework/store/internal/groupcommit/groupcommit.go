// Package groupcommit commits the writes of many concurrent requests in
// shared transactions: one goroutine takes the first waiting item, then
// every other already waiting (up to a bound), and hands the batch to the
// store's write function, which commits it in one transaction. With a
// durable commit (an fsync) per transaction, throughput under concurrency
// is bounded by the disk's sync rate divided by the batch, not by it.
//
// Each caller waits for its own item's result: nil once the batch it rode
// in is durable, its own error (a compare-and-swap conflict: the store
// wrote nothing of that item), or the batch's error, which fails every
// item of the batch. A caller whose context ends while its item waits to
// be queued leaves; once queued, the item is written and the caller waits
// for the result, so what was answered is what was written.
package groupcommit

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is the result of an item offered after Stop.
var ErrClosed = errors.New("store closed")

// WriteFunc commits a batch in one transaction. It returns one error per
// item (nil for written) and, if the whole batch failed, that error.
type WriteFunc[T any] func(batch []T) (itemErrs []error, batchErr error)

// Writer is one goroutine committing batches of T.
type Writer[T any] struct {
	mu     sync.RWMutex // held shared by senders, exclusively by Stop
	closed bool
	ch     chan request[T]
	done   chan struct{}
	write  WriteFunc[T]
	max    int
}

type request[T any] struct {
	item T
	res  chan error
}

// New starts a writer of batches of at most max items.
func New[T any](max int, write WriteFunc[T]) *Writer[T] {
	// Buffered by one batch: callers queue while a commit is in progress.
	w := &Writer[T]{ch: make(chan request[T], max), done: make(chan struct{}), write: write, max: max}
	go w.loop()
	return w
}

// Do offers item and waits for its result.
func (w *Writer[T]) Do(ctx context.Context, item T) error {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	req := request[T]{item: item, res: make(chan error, 1)}
	select {
	case w.ch <- req:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	return <-req.res
}

func (w *Writer[T]) loop() {
	defer close(w.done)
	for first := range w.ch {
		batch := []request[T]{first}
	gather:
		for len(batch) < w.max {
			select {
			case r, ok := <-w.ch:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		items := make([]T, len(batch))
		for i, r := range batch {
			items[i] = r.item
		}
		errs, err := w.write(items)
		for i, r := range batch {
			switch {
			case err != nil:
				r.res <- err
			case i < len(errs):
				r.res <- errs[i]
			default:
				r.res <- nil
			}
		}
	}
}

// Stop waits for the batch in progress and ends the writer.
func (w *Writer[T]) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	close(w.ch)
	<-w.done
}
