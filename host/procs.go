package host

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// procsWindow is how long the host must serve at most one request at a
// time before it narrows to one P.
const procsWindow = time.Second

// procGovernor runs the host's goroutines on one P while it serves one
// request at a time, and on Go's default number as soon as two overlap.
//
// A login at one request at a time is a chain of goroutine hand-offs
// (net/http's background read, the plugin call's gRPC writer and reader,
// the response), and with a second P idle each hand-off wakes another OS
// thread (runtime.wakep), which spins, finds nothing and parks again: a
// perf profile of the host at c=1 had more CPU in those wake-ups and the
// spinning than in the login's own work. On one P the same chain runs on
// one thread. A fixed GOMAXPROCS=1 made c=1 cheaper and faster but cost
// a third of the throughput at c=32 (BENCHMARKS.md, session 5), and would
// cap a larger machine; so the host widens again the moment a second
// request is in flight, and narrows only after a whole procsWindow with
// no overlap. Each change stops the world briefly (tens of µs); there are
// at most two per window.
//
// It stays off when the environment sets GOMAXPROCS (the operator's
// number is kept, as for the plugins) or when Go's default is already 1;
// and GOMAXPROCS is the process's, so of several Serves in one process
// (tests) only the first governs.
type procGovernor struct {
	next     http.Handler
	narrow   func() // to one P: runtime.GOMAXPROCS(1)
	widen    func() // back to the default: runtime.SetDefaultGOMAXPROCS
	inflight atomic.Int32
	overlap  atomic.Bool // two requests were in flight since the last tick
	one      atomic.Bool // narrowed
	mu       sync.Mutex  // serialises narrow and widen
}

// governing is set while a procGovernor runs in this process.
var governing atomic.Bool

// governProcs wraps h in a procGovernor and returns it with the function
// that runs its ticks until ctx ends (and leaves the default in place),
// or returns h and nil when the governor is off.
func governProcs(h http.Handler) (http.Handler, func(context.Context)) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || runtime.GOMAXPROCS(0) <= 1 || !governing.CompareAndSwap(false, true) {
		return h, nil
	}
	g := newProcGovernor(h, func() { runtime.GOMAXPROCS(1) }, runtime.SetDefaultGOMAXPROCS)
	return g, func(ctx context.Context) {
		defer governing.Store(false)
		t := time.NewTicker(procsWindow)
		defer t.Stop()
		defer g.wide()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.tick()
			}
		}
	}
}

func newProcGovernor(next http.Handler, narrow, widen func()) *procGovernor {
	return &procGovernor{next: next, narrow: narrow, widen: widen}
}

func (g *procGovernor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := g.inflight.Add(1)
	defer g.inflight.Add(-1)
	if n > 1 {
		g.overlap.Store(true)
		if g.one.Load() {
			g.wide()
		}
	}
	g.next.ServeHTTP(w, r)
}

// tick ends a window: one P if no two requests overlapped during it.
func (g *procGovernor) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.overlap.Swap(false) || g.inflight.Load() > 1 || g.one.Load() {
		return
	}
	g.narrow()
	g.one.Store(true)
	// A request that began to overlap meanwhile found one unset and left
	// the widening to this check (it sets overlap before it reads one).
	if g.overlap.Load() || g.inflight.Load() > 1 {
		g.widen()
		g.one.Store(false)
	}
}

// wide restores the default number of Ps.
func (g *procGovernor) wide() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.one.Load() {
		g.widen()
		g.one.Store(false)
	}
}
