//go:build bench && linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// startDuo starts the in-process Duo emulator and returns the providers
// config block of a Duo provider using it, and a function stopping it.
func startDuo(work string) (string, func(), error) {
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		return "", nil, err
	}
	duo, err := duoconfig.Entry(emu, work, duoconfig.Options{Failmode: "secure"})
	if err != nil {
		emu.Close()
		return "", nil, err
	}
	return duo, func() { emu.Close() }, nil
}

func (r *report) startupTable(o options, bin, work, duo string) error {
	if o.startups <= 0 {
		// Skipped (-startup-runs 0): goal 3 and the idle memory rows then
		// say not measured.
		return nil
	}
	sets := []struct{ name, providers string }{
		{"TOTP", totpProvider},
		{"TOTP + Duo", totpProvider + duo},
	}
	for _, set := range sets {
		fmt.Fprintf(os.Stderr, "bench: startup with %s, %d runs\n", set.name, o.startups)
		for i := range o.startups {
			// A fresh folder each time: the first start of a host, migrations
			// included.
			dir := filepath.Join(work, fmt.Sprintf("startup-%d-%d", len(set.providers), i))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			cfg, url, err := writeConfig(dir, bin, fmt.Sprintf("{driver: sqlite, dsn: %s}", filepath.Join(dir, "twofactor.db")), set.providers)
			if err != nil {
				return err
			}
			h, err := startHost(bin, cfg, url, filepath.Join(dir, "host.log"))
			if err != nil {
				return err
			}
			r.startup[set.name] = append(r.startup[set.name], h.ready)
			if i == o.startups-1 {
				// Idle: ready, then a second without requests.
				time.Sleep(time.Second)
				r.idleRSS[set.name] = h.rss()
			}
			h.stop()
		}
	}
	r.printf("## Startup (exec of `twofactor serve` to the first `/readyz` 200, SQLite, a fresh database each run)\n\n")
	r.printf("| providers | median | min – max | runs |\n|---|---:|---:|---:|\n")
	for _, set := range sets {
		v := r.startup[set.name]
		r.printf("| %s | %s | %s – %s | %d |\n", set.name, fmtDur(medianDur(v)), fmtDur(slices.Min(v)), fmtDur(slices.Max(v)), len(v))
	}
	r.printf("\nDuo is activated against the in-process Duo emulator (`providers/duo/duotest`) on loopback HTTPS.\n\n")
	return nil
}

func (r *report) memoryTable() {
	r.printf("## Memory (VmRSS from /proc/PID/status)\n\n")
	r.printf("| state | process | RSS |\n|---|---|---:|\n")
	row := func(state string, ps []procRSS) int64 {
		var total int64
		for _, p := range ps {
			r.printf("| %s | %s | %s |\n", state, p.name, fmtMiB(p.rss))
			total += p.rss
		}
		r.printf("| %s | **total** | **%s** |\n", state, fmtMiB(total))
		return total
	}
	for _, set := range []string{"TOTP", "TOTP + Duo"} {
		if ps, ok := r.idleRSS[set]; ok {
			row("idle, "+set, ps)
		}
	}
	if r.loadedRSS != nil {
		row("TOTP, "+r.loadedRSSFor, r.loadedRSS)
	}
	if m := r.memory; m != nil {
		row(fmt.Sprintf("TOTP + Duo, SQLite, %s users imported, after the scale rounds", fmtInt(m.users)), m.before)
		row(fmt.Sprintf("TOTP + Duo, SQLite, %s users, then %v of verify at c=%d over all of them (%.0f/s, %s)",
			fmtInt(m.users), m.duration, m.concurrency, m.result.RPS, fmtCounts(m.result.Outcomes)), m.after)
	}
	r.printf("\nRSS counts shared pages (the Go runtime, libc) once per process, so the total overstates the memory used.\n\n")
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func totalRSS(ps []procRSS) int64 {
	var t int64
	for _, p := range ps {
		t += p.rss
	}
	return t
}
