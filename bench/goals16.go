//go:build bench && linux

package main

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Goals of issue 16, computed from the login table.
const (
	goalSQLite32Share = 0.2                    // SQLite first-use c=32 ÷ bare c=32
	goalSQLite32P99   = 15 * time.Millisecond  // SQLite first-use c=32
	goalSQLite8Share  = 0.15                   // SQLite first-use c=8 ÷ bare c=8
	goalPostgresShare = 0.1                    // PostgreSQL first-use c=32 ÷ bare c=32
	goalC1OverFsync   = 500 * time.Microsecond // SQLite first-use c=1 p50 − the fsync floor
	goalCPUPerLogin   = 150 * time.Microsecond // host + plugin CPU per login, SQLite c=32
	// The bare baseline's CPU per request where the goals were set (the
	// issue's own measurement: 20-24 µs at c=32).
	goalSetBareCPULow, goalSetBareCPUHigh = 20 * time.Microsecond, 24 * time.Microsecond
)

// goals16 prints each of issue 16's goals with its figure and verdict. A
// goal whose row is missing, or whose first-use row was not all first
// uses allowed (errors, replays, out of codes), is not met: the figure
// would not measure what the goal is about.
func (r *report) goals16() {
	r.printf("## Goals of issue 16 (computed from this run)\n\n")
	if len(r.logins) == 0 {
		r.printf("Not measured (-login-users 0).\n\n")
		return
	}
	n := 0
	item := func(format string, args ...any) {
		n++
		r.printf("%d. ", n)
		r.printf(format, args...)
		r.printf("\n")
	}
	firstUse := func(server string, c int) (loginRow, string, bool) {
		row, ok := r.loginAt(server, workloadFirstUse, c)
		if !ok {
			return row, fmt.Sprintf("%s first-use logins at c=%d: **not measured**", server, c), false
		}
		if !row.allFirstUse() {
			return row, fmt.Sprintf("%s at c=%d: **not a clean first-use run** (outcomes %s, errors %s): **missed**",
				server, c, fmtCounts(row.x.Outcomes), fmtCounts(row.x.Errors)), false
		}
		return row, "", true
	}
	share := func(server string, c int, goal float64, extra func(loginRow) (string, bool)) {
		row, msg, ok := firstUse(server, c)
		if !ok {
			item("%s.", msg)
			return
		}
		bare, bok := r.bareAt(c)
		if !bok || !bare.allFirstUse() {
			item("%s first-use logins at c=%d: %.0f/s; the bare baseline at c=%d is missing or not clean: **missed**.", server, c, row.x.RPS, c)
			return
		}
		s := row.x.RPS / bare.x.RPS
		text := fmt.Sprintf("%s first-use logins at c=%d: %.0f/s, **%s×** the bare baseline's %.0f/s (goal ≥ %.2f×): %s",
			server, c, row.x.RPS, fmtRatio(s, 3), bare.x.RPS, goal, verdict(s >= goal))
		if extra != nil {
			if t, _ := extra(row); t != "" {
				text += "; " + t
			}
		}
		item("%s.", text)
	}
	sqlite, pg := storeLabel["sqlite"], storeLabel["postgres"]
	share(sqlite, 32, goalSQLite32Share, func(row loginRow) (string, bool) {
		return fmt.Sprintf("p99 %s (goal ≤ %s): %s", fmtDur(row.x.P99), fmtDur(goalSQLite32P99), verdict(row.x.P99 <= goalSQLite32P99)), true
	})
	share(sqlite, 8, goalSQLite8Share, nil)
	share(pg, 32, goalPostgresShare, nil)
	if row, msg, ok := firstUse(sqlite, 1); !ok {
		item("%s.", msg)
	} else {
		limit := r.fsync + goalC1OverFsync
		item("SQLite first-use logins at c=1: p50 %s against the disk's fsync floor %s measured in this run (goal ≤ floor + %s = %s): %s.",
			fmtDur(row.x.P50), fmtDur(r.fsync), fmtDur(goalC1OverFsync), fmtDur(limit), verdict(row.x.P50 <= limit))
	}
	if row, msg, ok := firstUse(sqlite, 32); !ok {
		item("%s.", msg)
	} else {
		cpu := row.serverCPU()
		text := fmt.Sprintf("Host + plugin CPU per login, SQLite c=32: %s (host %s, plugin %s; goal ≤ %s): %s", fmtDur(cpu),
			fmtDur(row.perRequest(row.cpu.host)), fmtDur(row.perRequest(row.cpu.plugins)), fmtDur(goalCPUPerLogin), verdict(cpu <= goalCPUPerLogin))
		// The goal is absolute, set on a machine whose bare baseline took
		// 20-24 µs a request; the ratio to this run's bare baseline says
		// how far the host is from it on a faster or slower machine. Not
		// a verdict: the goal is the absolute figure.
		if bare, ok := r.bareAt(32); ok && bare.serverCPU() > 0 {
			text += fmt.Sprintf(" (not a verdict: %.1f× the bare baseline's %s a request in this run; the goal was %.1f–%.1f× the bare baseline where it was set)",
				float64(cpu)/float64(bare.serverCPU()), fmtDur(bare.serverCPU()),
				float64(goalCPUPerLogin)/float64(goalSetBareCPUHigh), float64(goalCPUPerLogin)/float64(goalSetBareCPULow))
		}
		item("%s.", text)
	}
	wrong, wok := r.loginAt(sqlite, workloadWrong, 32)
	first, _, fok := firstUse(sqlite, 32)
	switch {
	case !wok || !fok:
		item("Wrong codes against first-use logins at c=32 on SQLite: **not measured**.")
	case wrong.x.Requests == 0 || wrong.x.Outcomes["allow"] > 0 || wrong.x.DoubleAccepts > 0 || len(wrong.x.Errors) > 0:
		item("Wrong codes at c=32 on SQLite: **not a clean wrong-code run** (outcomes %s, errors %s): **missed**.",
			fmtCounts(wrong.x.Outcomes), fmtCounts(wrong.x.Errors))
	default:
		item("Wrong codes at c=32 on SQLite: %.0f/s against %.0f/s first-use logins, %s× (goal ≥ 1×), %s server CPU each against %s: %s.",
			wrong.x.RPS, first.x.RPS, fmtRatio(wrong.x.RPS/first.x.RPS, 2), fmtDur(wrong.serverCPU()), fmtDur(first.serverCPU()), verdict(wrong.x.RPS >= first.x.RPS))
	}
	if row, ok := r.loginAt(sqlite, workloadReplay, 32); ok {
		r.printf("\nNot a goal, for comparison: replays at c=32 on SQLite (the freshest code of %s users; %s) %.0f/s, %s server CPU each.\n",
			fmtInt(r.replayUsers), fmtCounts(row.x.Outcomes), row.x.RPS, fmtDur(row.serverCPU()))
	}
	r.printf("\n")
}

// fmtRatio writes x with digits decimals, cut rather than rounded, so that
// a ratio printed at or above a goal's line is at or above it: 0.19975
// rounds to "0.200" but missed a goal of 0.2 (a run of this session
// printed both). The small epsilon keeps 0.57 from reading as 0.56 (its
// float64 times 100 is 56.99999…).
func fmtRatio(x float64, digits int) string {
	p := math.Pow(10, float64(digits))
	return strconv.FormatFloat(math.Floor(x*p+1e-9)/p, 'f', digits, 64)
}
