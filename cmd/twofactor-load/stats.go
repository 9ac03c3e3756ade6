package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are less than or equal to it. It is always one of the measured
// values, never an interpolation. Zero for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// rank = ceil(p/100 * n), computed in integers where possible so that
	// p=50, n=10 gives rank 5 and not 5.000000001.
	rank := int(p * float64(n) / 100)
	if float64(rank)*100 < p*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Result is one load level's figures.
type Result struct {
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"` // measured wall time, warm-up excluded
	Requests    int            `json:"requests"`
	RPS         float64        `json:"requests_per_second"`
	P50         time.Duration  `json:"p50_ns"`
	P90         time.Duration  `json:"p90_ns"`
	P99         time.Duration  `json:"p99_ns"`
	Max         time.Duration  `json:"max_ns"`
	Outcomes    map[string]int `json:"outcomes"`         // "allow", "deny/replayed", …
	Errors      map[string]int `json:"errors,omitempty"` // "http 503 provider_unavailable", "transport timeout", …
	// FreshSent counts requests that were the first use of a (user, step):
	// each should be one allow, unless wrong codes locked the user out.
	FreshSent int `json:"fresh_sent"`
	// DoubleAccepts counts allows of a (user, step) already allowed, and
	// allows of wrong codes: broken guarantees. It must be 0.
	DoubleAccepts int `json:"double_accepts"`
}

// summarize computes a Result from the latencies of the measured requests
// (in any order; lat is sorted in place).
func summarize(c int, elapsed time.Duration, lat []time.Duration, outcomes, errs map[string]int, fresh, doubles int) Result {
	slices.Sort(lat)
	r := Result{
		Concurrency: c, Seconds: elapsed.Seconds(), Requests: len(lat),
		P50: percentile(lat, 50), P90: percentile(lat, 90), P99: percentile(lat, 99),
		Outcomes: outcomes, Errors: errs, FreshSent: fresh, DoubleAccepts: doubles,
	}
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	if elapsed > 0 {
		r.RPS = float64(len(lat)) / elapsed.Seconds()
	}
	return r
}

// fmtDur prints a latency with three significant figures: µs below a
// millisecond, ms above.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// fmtCounts prints a count map as "a 3, b 1", largest first, then by name.
func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// tableHeader is the Markdown header the rows of markdownRow fit under.
const tableHeader = "| concurrency | requests | req/s | p50 | p90 | p99 | max | outcomes | errors | double accepts |\n" +
	"|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n"

func markdownRow(r Result) string {
	return fmt.Sprintf("| %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %d |\n",
		r.Concurrency, r.Requests, r.RPS, fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max),
		fmtCounts(r.Outcomes), fmtCounts(r.Errors), r.DoubleAccepts)
}

func writeTable(w io.Writer, rs []Result) {
	io.WriteString(w, tableHeader)
	for _, r := range rs {
		io.WriteString(w, markdownRow(r))
	}
}
