//go:build bench && linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type benchSamples struct {
	ns, bytes, allocs []float64
	// extra holds the benchmark's own metrics (b.ReportMetric), by unit.
	extra map[string][]float64
}

// benchFailure is a benchmark that failed, with its first message line.
type benchFailure struct{ name, message string }

var failLine = regexp.MustCompile(`^\s*--- FAIL: Benchmark(\S+)`)

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+((?:\s+[\d.e+-]+ \S+)+)\s*$`)

// parseBench reads `go test -bench` output; names keep their order of
// first appearance. Failed benchmarks are returned with the line after
// their FAIL line (the message), and a build failure as one named "build".
func parseBench(rd io.Reader) (map[string]*benchSamples, []string, []benchFailure, error) {
	out := map[string]*benchSamples{}
	var order []string
	var failed []benchFailure
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := failLine.FindStringSubmatch(line); f != nil {
			failed = append(failed, benchFailure{name: f[1]})
			continue
		}
		if n := len(failed); n > 0 && failed[n-1].message == "" && strings.TrimSpace(line) != "" && !strings.Contains(line, "--- FAIL") {
			failed[n-1].message = strings.TrimSpace(line)
		}
		if strings.HasPrefix(line, "FAIL") && strings.Contains(line, "[build failed]") {
			failed = append(failed, benchFailure{name: "build", message: line})
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s, ok := out[m[1]]
		if !ok {
			s = &benchSamples{extra: map[string][]float64{}}
			out[m[1]] = s
			order = append(order, m[1])
		}
		// Pairs of "value unit".
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			default:
				s.extra[f[i+1]] = append(s.extra[f[i+1]], v)
			}
		}
	}
	return out, order, failed, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

func (r *report) microTables(files []string) error {
	r.micro = map[string]*benchSamples{}
	var order []string
	var failed []benchFailure
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		m, o, fl, err := parseBench(bytes.NewReader(b))
		if err != nil {
			return err
		}
		failed = append(failed, fl...)
		for _, name := range o {
			if _, dup := r.micro[name]; !dup {
				order = append(order, name)
			}
			r.micro[name] = m[name]
		}
	}
	r.printf("## Micro benchmarks (`go test -bench`, medians of %d runs)\n\n", r.runs())
	r.printf("In-process against the plugin (the real `twofactor-provider-totp` binary over go-plugin gRPC with AutoMTLS):\n\n")
	r.printf("| benchmark | in-process | plugin | plugin / in-process |\n|---|---:|---:|---:|\n")
	for _, name := range order {
		base, ok := strings.CutSuffix(name, "/in-process")
		if !ok {
			continue
		}
		in, pl := r.micro[name], r.micro[base+"/plugin"]
		if pl == nil {
			continue
		}
		mi, mp := median(in.ns), median(pl.ns)
		r.printf("| `%s` | %s | %s | %.0f× |\n", base, fmtNs(mi), fmtNs(mp), mp/mi)
	}
	r.printf("\nEvery benchmark (ns/op of a parallel run is wall time per call; 1/that is calls per second):\n\n")
	r.printf("| benchmark | median | min – max | calls/s | B/op | allocs/op | runs |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range order {
		s := r.micro[name]
		lo, hi := slices.Min(s.ns), slices.Max(s.ns)
		r.printf("| `%s` | %s | %s – %s | %.0f | %s | %s | %d |\n", name, fmtNs(median(s.ns)), fmtNs(lo), fmtNs(hi),
			1e9/median(s.ns), fmtCount(median(s.bytes)), fmtCount(median(s.allocs)), len(s.ns))
	}
	r.printf("\n")
	// Parents fail with their children; list the leaves.
	for _, f := range failed {
		leaf := true
		for _, g := range failed {
			if strings.HasPrefix(g.name, f.name+"/") {
				leaf = false
			}
		}
		if leaf {
			fmt.Fprintf(os.Stderr, "bench: benchmark %s FAILED: %s\n", f.name, f.message)
			r.printf("- **FAILED**: `%s`: %s\n", f.name, f.message)
		}
	}
	if len(failed) > 0 {
		r.printf("\n")
	}
	return nil
}

func (r *report) runs() int {
	n := 0
	for _, s := range r.micro {
		n = max(n, len(s.ns))
	}
	return n
}

func fmtNs(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "–"
	case ns < 1e3:
		return fmt.Sprintf("%.1f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.2f ms", ns/1e6)
}

func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtDur(d time.Duration) string { return fmtNs(float64(d)) }
