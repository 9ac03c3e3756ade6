package host

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// procsRecorder counts the governor's changes and blocks handlers on
// demand, so a test decides when requests overlap.
type procsRecorder struct {
	mu             sync.Mutex
	narrows, widen int
}

func (r *procsRecorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.narrows, r.widen
}

func newTestGovernor(h http.Handler) (*procGovernor, *procsRecorder) {
	rec := &procsRecorder{}
	g := newProcGovernor(h,
		func() { rec.mu.Lock(); rec.narrows++; rec.mu.Unlock() },
		func() { rec.mu.Lock(); rec.widen++; rec.mu.Unlock() })
	return g, rec
}

func serve(g http.Handler) {
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

// TestProcGovernor: one P after a window of one request at a time, the
// default again as soon as two overlap, and no narrowing in a window
// that saw an overlap or with two requests in flight.
func TestProcGovernor(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var block sync.Mutex
	blocking := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		block.Lock()
		b := blocking
		block.Unlock()
		if b {
			entered <- struct{}{}
			<-release
		}
	})
	setBlocking := func(b bool) { block.Lock(); blocking = b; block.Unlock() }
	g, rec := newTestGovernor(h)
	check := func(step string, narrows, widens int, one bool) {
		t.Helper()
		n, w := rec.counts()
		if n != narrows || w != widens || g.one.Load() != one {
			t.Fatalf("%s: narrows %d widens %d one %v; want %d %d %v", step, n, w, g.one.Load(), narrows, widens, one)
		}
	}

	for range 3 {
		serve(g) // one at a time
	}
	g.tick()
	check("a window of sequential requests", 1, 0, true)
	serve(g)
	g.tick()
	check("still sequential", 1, 0, true)

	// A request held in flight, then a second one: the second widens.
	setBlocking(true)
	var wg sync.WaitGroup
	wg.Go(func() { serve(g) })
	<-entered
	wg.Go(func() { serve(g) })
	<-entered
	check("two in flight", 1, 1, false)
	g.tick() // the window saw the overlap
	check("tick after an overlap", 1, 1, false)
	g.tick() // no new overlap, but two still in flight
	check("tick with two in flight", 1, 1, false)
	release <- struct{}{}
	release <- struct{}{}
	wg.Wait()
	setBlocking(false)

	serve(g)
	g.tick()
	check("a quiet window again", 2, 1, true)
	g.wide()
	check("stop", 2, 2, false)
}

// TestProcGovernorOverlapDuringNarrow: a request that begins to overlap
// while the tick narrows is widened by the tick itself.
func TestProcGovernorOverlapDuringNarrow(t *testing.T) {
	g, rec := newTestGovernor(http.NotFoundHandler())
	g.narrow = func() {
		rec.mu.Lock()
		rec.narrows++
		rec.mu.Unlock()
		// What ServeHTTP does for a second request arriving now, before
		// one is set: it marks the overlap and finds one unset.
		g.inflight.Add(2)
		g.overlap.Store(true)
	}
	g.tick()
	if n, w := rec.counts(); n != 1 || w != 1 || g.one.Load() {
		t.Fatalf("narrows %d widens %d one %v; want 1 1 false", n, w, g.one.Load())
	}
}
