package providertest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// outcome is what one provider call did.
type outcome[R any] struct {
	val      R
	err      error
	panicked string // the panic value and stack, in process only
	hung     bool   // it had not returned when the kit stopped waiting
	elapsed  time.Duration
}

// callCtx runs fn(ctx) in its own goroutine and waits at most wait for it,
// so a provider that panics or never returns is reported instead of
// crashing or hanging the test.
func callCtx[R any](ctx context.Context, wait time.Duration, fn func(context.Context) (R, error)) outcome[R] {
	ch := make(chan outcome[R], 1)
	start := time.Now()
	go func() {
		var o outcome[R]
		defer func() {
			if r := recover(); r != nil {
				o.panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
			}
			o.elapsed = time.Since(start)
			ch <- o
		}()
		o.val, o.err = fn(ctx)
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case o := <-ch:
		return o
	case <-timer.C:
		return outcome[R]{hung: true, elapsed: time.Since(start)}
	}
}

// call runs fn with the kit's per-call timeout. A call that misses it
// (no answer in time, or the deadline's error after it passed) fails the
// running rule at once and marks the run to stop after it.
func call[R any](k *kit, fn func(context.Context) (R, error)) outcome[R] {
	ctx, cancel := context.WithTimeout(context.Background(), k.opts.Timeout)
	defer cancel()
	o := callCtx(ctx, k.opts.Timeout+min(time.Second, k.opts.Timeout), fn)
	if o.hung || (ctx.Err() != nil && isContextErr(o.err)) {
		k.deadlineMissed(fmt.Sprintf("a call took %s of its %s", o.elapsed.Round(time.Millisecond), k.opts.Timeout))
	}
	return o
}

// deadlineMissed fails the running rule at once and stops the run after
// it (see Options.Timeout).
func (k *kit) deadlineMissed(what string) {
	k.missed = fmt.Sprintf("rule %s: %s", k.rule, what)
	if k.cur != nil {
		k.cur.Fatalf("rule %s: %s: the provider missed its deadline; the kit stops here (Options.Timeout)", k.rule, what)
	}
}

// callErr is call for methods that return only an error.
func callErr(k *kit, fn func(context.Context) error) outcome[struct{}] {
	return call(k, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
}

// broken describes a call that failed in a way no rule allows: a panic, a
// hang, a broken plugin connection, or an internal error (which is how a
// panic inside a plugin comes back). It returns "" otherwise.
func broken[R any](o outcome[R]) string {
	switch {
	case o.panicked != "":
		first, _, _ := strings.Cut(o.panicked, "\n")
		return "panicked: " + first
	case o.hung:
		return fmt.Sprintf("did not return within %s", o.elapsed.Round(time.Millisecond))
	case errors.Is(o.err, sdkplugin.ErrUnreachable):
		return fmt.Sprintf("failed in transport (the plugin crashed or its connection broke): %v", o.err)
	case o.err != nil && sdk.KindOf(o.err) == sdk.KindInternal && !isContextErr(o.err):
		return fmt.Sprintf("returned an internal error (a panic inside a plugin comes back this way): %v", o.err)
	}
	return ""
}

func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// kindOf returns the Kind of a typed error, or "" for any other error.
func kindOf(err error) sdk.Kind {
	var e *sdk.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// logRecorder keeps a plugin's log lines (as the host would re-emit them)
// so rules can look for what the plugin reported.
type logRecorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every write
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// mark is the index of the next line to be written.
func (l *logRecorder) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// waitFor returns the first line from index from on that contains substr,
// waiting up to d for it to be written.
func (l *logRecorder) waitFor(substr string, from int, d time.Duration) (string, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines[from:] {
			if strings.Contains(line, substr) {
				l.mu.Unlock()
				return line, true
			}
		}
		from = len(l.lines)
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return "", false
		}
	}
}

func (l *logRecorder) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}
