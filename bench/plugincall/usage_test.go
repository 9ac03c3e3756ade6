//go:build bench

package plugincall

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// usage is what a process used: CPU time and context switches, summed
// over its threads. Wall time per call on a shared two-core machine is
// mostly other people's load; these two are the call's own cost.
type usage struct {
	cpu   time.Duration
	ctxsw int64
}

// readUsage sums /proc/PID/task/*/schedstat (nanoseconds on a CPU) and
// the voluntary and involuntary context switches of /proc/PID/task/*/status.
// A thread that exited in between is missed; Go keeps its threads, so a
// benchmark in steady state loses nothing.
func readUsage(pid int) (usage, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return usage{}, err
	}
	var u usage
	for _, t := range tasks {
		sched, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited while we read
		}
		ns, err := strconv.ParseInt(string(bytes.Fields(sched)[0]), 10, 64)
		if err != nil {
			return usage{}, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		u.cpu += time.Duration(ns)
		status, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range bytes.Lines(status) {
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok || !bytes.HasSuffix(name, []byte("ctxt_switches")) {
				continue
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
			if err != nil {
				return usage{}, fmt.Errorf("%s/%s/status: %w", dir, t.Name(), err)
			}
			u.ctxsw += n
		}
	}
	return u, nil
}

// meter measures the host (this process) and the plugin (pid) from now
// until its stop, which reports each side's CPU and context switches per
// call over the benchmark's b.N calls. Call stop after the timed calls,
// before anything else runs.
func meter(b *testing.B, pid int) (stop func()) {
	b.Helper()
	host0, err := readUsage(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	plugin0, err := readUsage(pid)
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		host1, err := readUsage(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		plugin1, err := readUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		n := float64(b.N)
		hostCPU, pluginCPU := host1.cpu-host0.cpu, plugin1.cpu-plugin0.cpu
		µs := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
		b.ReportMetric(µs(hostCPU), "host-cpu-µs/call")
		b.ReportMetric(µs(pluginCPU), "plugin-cpu-µs/call")
		b.ReportMetric(µs(hostCPU+pluginCPU), "cpu-µs/call")
		b.ReportMetric(float64(host1.ctxsw-host0.ctxsw)/n, "host-ctxsw/call")
		b.ReportMetric(float64(plugin1.ctxsw-plugin0.ctxsw)/n, "plugin-ctxsw/call")
	}
}
