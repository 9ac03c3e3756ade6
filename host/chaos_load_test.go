//go:build chaos

package host_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The chaos tests (build tag chaos) share this harness: a steady verify
// load, a classifier of answers, and the throughput-recovery measurement.
//
// Throughput is the number of answers per bucket (bucketLen) that the
// real backend gave (not a 503, not a failmode decision), counted by
// completion time. Before each fault the load runs steadyFor undisturbed;
// the median of its buckets is the steady state. After the fault, a bucket
// starting at the fault's end, or a multiple of slide later, must reach
// recoveredShare of it and end within recoverWithin of the fault. The load is paced (rate requests a second), so on a quiet machine the
// steady state is the rate and a recovered host serves it again; on a
// machine too busy to sustain the rate it degrades into a closed loop of
// workers, and the comparison with the median still holds.
const (
	bucketLen      = 500 * time.Millisecond
	steadyFor      = 2 * time.Second
	recoverWithin  = 5 * time.Second
	recoveredShare = 0.9
)

// chaosRounds is how many faults each chaos test injects: CHAOS_ROUNDS
// (make test runs 3, the CI short form; make chaos runs 20), 3 when unset.
func chaosRounds(t *testing.T) int {
	t.Helper()
	n := 3
	if v := os.Getenv("CHAOS_ROUNDS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			t.Fatalf("CHAOS_ROUNDS=%q: want a positive number", v)
		}
	}
	return n
}

// load is a steady request load: workers each send one request every
// workers/rate seconds; a worker that falls behind (its request took
// longer) sends the next one at once, without catching up on the ones it
// missed, so a fault never leaves a backlog that would flatter recovery.
type load struct {
	name  string
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	good []time.Duration // completion times (since start) of answers from the real backend, in order
	sent int             // calls of send
	late int             // calls of send late because the previous one took too long
}

// startLoad runs send rate times a second on workers goroutines until
// Stop; send returns how many of its answers count as throughput.
func startLoad(name string, rate float64, workers int, send func() int) *load {
	l := &load{name: name, start: time.Now(), stop: make(chan struct{})}
	interval := time.Duration(float64(workers) / rate * float64(time.Second))
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			next := l.start.Add(interval * time.Duration(w) / time.Duration(workers))
			for {
				if d := time.Until(next); d > 0 {
					timer.Reset(d)
					select {
					case <-l.stop:
						return
					case <-timer.C:
					}
				} else {
					select {
					case <-l.stop:
						return
					default:
					}
				}
				good := send()
				late := false
				next = next.Add(interval)
				if now := time.Now(); next.Before(now) {
					next, late = now, true
				}
				l.record(good, late)
			}
		}()
	}
	return l
}

func (l *load) record(good int, late bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The time is read under the lock, so the slice stays in order and,
	// once a reader holding the lock has seen a moment pass, no
	// completion can still land before it.
	at := time.Since(l.start)
	for range good {
		l.good = append(l.good, at)
	}
	l.sent++
	if late {
		l.late++
	}
}

// Stop ends the load and waits for the requests in flight.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// count returns the number of good answers completed in [from, to),
// waiting (on a timer: the window closes at a known time) until to has
// passed.
func (l *load) count(from, to time.Time) int {
	if d := time.Until(to); d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}
	a, b := from.Sub(l.start), to.Sub(l.start)
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearch(l.good, a)
	j, _ := slices.BinarySearch(l.good, b)
	return j - i
}

func median(xs []int) float64 {
	s := slices.Clone(xs)
	sort.Ints(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// recovery is one fault's throughput figures for one load.
type recovery struct {
	fault, load string
	steady      float64       // median answers per bucket before the fault
	lowest      int           // the lowest bucket from the fault to recovery
	after       time.Duration // from the fault's end to the end of the first recovered bucket
	ok          bool
}

func (r recovery) String() string {
	rate := float64(time.Second) / float64(bucketLen)
	if !r.ok {
		return fmt.Sprintf("%s [%s]: steady %.0f/s, lowest %.0f/s, NOT back to %.0f%% within %v",
			r.fault, r.load, r.steady*rate, float64(r.lowest)*rate, recoveredShare*100, recoverWithin)
	}
	return fmt.Sprintf("%s [%s]: steady %.0f/s, lowest %.0f/s, back to >=%.0f%% %.1fs after",
		r.fault, r.load, r.steady*rate, float64(r.lowest)*rate, recoveredShare*100, r.after.Seconds())
}

// slide is the step by which the recovery bucket moves after a fault: the
// recovery time is the end of the first bucketLen window, starting at the
// fault's end or a multiple of slide later, that reaches recoveredShare
// of the steady state. At least bucketLen, even for a fault nobody saw.
const slide = 100 * time.Millisecond

// steadyWait bounds the wait for a steady state before a fault, beyond
// steadyFor.
const steadyWait = 10 * time.Second

// chaosRound lets the loads run steadyFor, measures their steady state
// (the median of its buckets), runs inject (which returns when the fault
// is over, with the moment from which recovery is counted), then waits for
// each load to recover, at most recoverWithin. It reports failures with
// t.Errorf and returns the figures.
//
// A fault goes in only once every load has a steady state: while a median
// is zero (half the buckets empty: a machine too busy to serve at all is
// no steady state to return to), the window slides on by a bucket, for at
// most steadyWait.
func chaosRound(t *testing.T, fault string, loads []*load, inject func() time.Time) []recovery {
	t.Helper()
	steady := make([]float64, len(loads))
	begin := time.Now()
	faultAt := begin.Add(steadyFor)
	for {
		ready := true
		for i, l := range loads {
			var buckets []int
			for b := faultAt.Add(-steadyFor); b.Before(faultAt); b = b.Add(bucketLen) {
				buckets = append(buckets, l.count(b, b.Add(bucketLen))) // waits for faultAt
			}
			steady[i] = median(buckets)
			ready = ready && steady[i] > 0
		}
		if ready {
			break
		}
		if faultAt.Sub(begin) >= steadyFor+steadyWait {
			t.Errorf("%s: no steady state within %v (medians per bucket %v; %s)", fault, steadyFor+steadyWait, steady, machineLoad())
			return nil
		}
		faultAt = faultAt.Add(bucketLen)
	}
	if d := faultAt.Sub(begin) - steadyFor; d > 0 {
		t.Logf("%s: waited %v more for a steady state", fault, d)
	}
	end := inject()
	var out []recovery
	for i, l := range loads {
		r := recovery{fault: fault, load: l.name, steady: steady[i], lowest: -1}
		// The lowest point: the fault's own buckets, then the ones after.
		for b := faultAt; b.Add(bucketLen).Before(end); b = b.Add(bucketLen) {
			if n := l.count(b, b.Add(bucketLen)); r.lowest < 0 || n < r.lowest {
				r.lowest = n
			}
		}
		for b := end; !b.Add(bucketLen).After(end.Add(recoverWithin)); b = b.Add(slide) {
			n := l.count(b, b.Add(bucketLen))
			if r.lowest < 0 || n < r.lowest {
				r.lowest = n
			}
			if float64(n) >= recoveredShare*steady[i] {
				r.after, r.ok = b.Add(bucketLen).Sub(end), true
				break
			}
		}
		if !r.ok {
			t.Errorf("throughput not recovered: %v (%s)", r, machineLoad())
		}
		t.Log(r)
		out = append(out, r)
	}
	return out
}

// logRecoveries sums up the recovery times of a run.
func logRecoveries(t *testing.T, all []recovery) {
	t.Helper()
	var secs []string
	var worst time.Duration
	for _, r := range all {
		if r.ok {
			secs = append(secs, fmt.Sprintf("%.1f", r.after.Seconds()))
			worst = max(worst, r.after)
		} else {
			secs = append(secs, "never")
		}
	}
	t.Logf("recovery times (s; %v windows sliding by %v after the fault; bound %v): %s; worst %.1fs (%s)",
		bucketLen, slide, recoverWithin, strings.Join(secs, " "), worst.Seconds(), machineLoad())
}

// machineLoad describes how busy the machine is, for the messages of
// failures that a starved machine can cause.
func machineLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return fmt.Sprintf("load average %s %s %s on %d CPUs", f[0], f[1], f[2], runtime.NumCPU())
}

// tally counts answers by kind and collects the ones that break a rule.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	bad    []string
}

func newTally() *tally { return &tally{counts: map[string]int{}} }

func (t *tally) add(kind string) {
	t.mu.Lock()
	t.counts[kind]++
	t.mu.Unlock()
}

// fail records a broken rule (reported by report: the workers are not the
// test goroutine).
func (t *tally) fail(format string, args ...any) {
	t.mu.Lock()
	if len(t.bad) < 20 {
		t.bad = append(t.bad, fmt.Sprintf(format, args...))
	}
	t.counts["BAD"]++
	t.mu.Unlock()
}

func (t *tally) report(tt *testing.T, name string) {
	tt.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	tt.Logf("%s answers: %v", name, t.counts)
	for _, b := range t.bad {
		tt.Errorf("%s: %s", name, b)
	}
	if n := t.counts["BAD"]; n > len(t.bad) {
		tt.Errorf("%s: %d more like these", name, n-len(t.bad))
	}
}

// used checks that no (user, TOTP step) is allowed twice.
type used struct {
	mu      sync.Mutex
	allowed map[string]map[int64]int
	unseen  map[string]bool // users an answer to whom was lost
}

func newUsed() *used { return &used{allowed: map[string]map[int64]int{}} }

func (u *used) allow(user string, step int64) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.allowed[user] == nil {
		u.allowed[user] = map[int64]int{}
	}
	u.allowed[user][step]++
	return u.allowed[user][step]
}

// lost notes that an answer to user was lost (its replica was killed):
// that user may have been allowed without the harness seeing it.
func (u *used) lost(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.unseen == nil {
		u.unseen = map[string]bool{}
	}
	u.unseen[user] = true
}

// check reports every step allowed more than once and every user never
// allowed at all (unless an answer to them was lost); it returns the
// number of allows.
func (u *used) check(t *testing.T, users []string) int {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	total := 0
	for _, user := range users {
		if len(u.allowed[user]) == 0 && !u.unseen[user] {
			t.Errorf("%s was never allowed during the run", user)
		}
		for step, n := range u.allowed[user] {
			total += n
			if n > 1 {
				t.Errorf("%s: the code of step %d was accepted %d times", user, step, n)
			}
		}
	}
	return total
}

// answer is a verify answer: "200 allow/", "200 deny/replayed",
// "503 provider_unavailable/" ...
type answer struct {
	status                     int
	outcome, reason, errorCode string
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s%s/%s", a.status, a.outcome, a.errorCode, a.reason)
}

// chaosClient is an HTTP client that keeps a connection per worker.
func chaosClient(workers int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxIdleConns: 4 * workers, IdleConnTimeout: time.Minute},
		Timeout:   15 * time.Second,
	}
}

// postVerify sends a verify; an error is a transport error (no answer).
func postVerify(c *http.Client, base, user string, body map[string]string) (answer, error) {
	j, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", base+"/v1/users/"+url.PathEscape(user)+"/verify", bytes.NewReader(j))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+appKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	var out struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return answer{status: res.StatusCode, errorCode: "not_json"}, nil
	}
	return answer{status: res.StatusCode, outcome: out.Outcome, reason: out.Reason, errorCode: out.Error.Code}, nil
}

// concurrently runs f(0) … f(n-1) at once and returns the sum of their
// results.
func concurrently(n int, f func(i int) int) int {
	var wg sync.WaitGroup
	results := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f(i)
		}()
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	return sum
}
