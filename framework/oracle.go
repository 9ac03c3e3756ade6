package framework

import (
	"context"
	"sync/atomic"
	"time"
)

// A verification that finds no enrollment would answer faster than one
// that asks the provider, and the difference would tell an attacker with a
// stopwatch which user ids have a second factor. So the framework keeps a
// running average of each provider's verify latency and holds a
// not-enrolled answer until about that long has passed. (The reason
// itself still reaches the trusted host application; what an end user is
// shown is the host application's choice.)

// latencyEWMA is a provider's smoothed verify latency in nanoseconds.
type latencyEWMA struct{ ns atomic.Int64 }

// observe folds one measurement in with weight 1/8: quick to follow a
// slower backend, steady against one outlier.
func (l *latencyEWMA) observe(d time.Duration) {
	for {
		old := l.ns.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if l.ns.CompareAndSwap(old, next) {
			return
		}
	}
}

func (l *latencyEWMA) get() time.Duration { return time.Duration(l.ns.Load()) }

// maxPad bounds the padding, so a provider that was once very slow (a
// timed-out backend) cannot make every not-enrolled answer wait long.
const maxPad = 2 * time.Second

// padNotEnrolled waits out the rest of the provider's usual verify time.
func (f *Framework) padNotEnrolled(ctx context.Context, m *managed, started time.Time) {
	if d := min(m.latency.get(), maxPad) - time.Since(started); d > 0 {
		f.sleep(ctx, d)
	}
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
