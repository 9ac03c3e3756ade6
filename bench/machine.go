//go:build bench && linux

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func (r *report) machine(source string) {
	if source == "" {
		source = gitDescribe()
	}
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			cpu = strings.TrimSpace(string(m[1]))
		}
	}
	pg := "not used (TEST_POSTGRES_DSN unset)"
	if dsn := os.Getenv("TEST_POSTGRES_DSN"); dsn != "" {
		pg = "unreachable"
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			var v string
			if c.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
				pg = "PostgreSQL " + v + " (same machine, 127.0.0.1)"
			}
			c.Close(ctx)
		}
	}
	r.printf("## Machine\n\n")
	r.printf("- %s: %d CPUs (`nproc`), %s\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), cpu)
	r.printf("- %s; date %s\n", runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	r.printf("- %s\n", pg)
	r.printf("- source: %s\n", source)
	r.printf("- The load generator, the host, its plugins and PostgreSQL share these CPUs, and so does whatever else runs on the machine: load average at the start %s.\n\n", loadavg())
}

// gitDescribe names the commit measured, and whether the work tree had
// uncommitted changes (they are measured too).
func gitDescribe() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "not a git checkout"
	}
	desc := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		desc += " plus uncommitted changes in the work tree"
	}
	return desc
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " / ")
	}
	return "unknown"
}
