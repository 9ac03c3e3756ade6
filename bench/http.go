//go:build bench && linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// loadResult and loadReport mirror cmd/twofactor-load's -json output.
type loadResult struct {
	Concurrency   int            `json:"concurrency"`
	Seconds       float64        `json:"seconds"`
	Requests      int            `json:"requests"`
	RPS           float64        `json:"requests_per_second"`
	P50           time.Duration  `json:"p50_ns"`
	P90           time.Duration  `json:"p90_ns"`
	P99           time.Duration  `json:"p99_ns"`
	Max           time.Duration  `json:"max_ns"`
	Outcomes      map[string]int `json:"outcomes"`
	Errors        map[string]int `json:"errors"`
	FreshSent     int            `json:"fresh_sent"`
	DoubleAccepts int            `json:"double_accepts"`
}

type loadReport struct {
	Users         int          `json:"users"`
	EnrollSeconds float64      `json:"enroll_seconds"`
	Results       []loadResult `json:"results"`

	// Filled by the driver: CPU seconds used during the whole run, and
	// per level (warm-up included).
	cpuHost, cpuPlugins, cpuLoad float64
	levels                       []levelCPU
}

// cpuSnap is the CPU seconds used so far by each process, and the
// context switches of the host's and its plugins' threads, at a moment.
type cpuSnap struct {
	at                  time.Time
	host, plugins, load float64
	switches            int64
}

// levelCPU is the CPU each process used during one level (warm-up
// included), over the level's wall time, and the server's (host and
// plugins) context switches.
type levelCPU struct {
	wall                time.Duration
	host, plugins, load float64
	switches            int64
}

// lineWatcher passes a child's stderr through and calls onLine for every
// complete line.
type lineWatcher struct {
	buf    []byte
	onLine func(string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	os.Stderr.Write(p)
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.onLine(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

var storeLabel = map[string]string{
	"sqlite":       "SQLite",
	"postgres":     "PostgreSQL",
	"sqlite-tmpfs": "SQLite in tmpfs (diagnostic: no fsync)",
}

func (r *report) httpTables(o options, bin, work string) error {
	r.printf("## HTTP verify of the freshest code, mostly replays (issue 7's workload)\n\n")
	r.printf("`cmd/twofactor-load`: %d users enrolled through the API, round robin, each request the user's freshest valid TOTP code "+
		"(the first use of a step is an allow, later ones replays); %v measured per level after %v of warm-up; "+
		"replay protection, attempt counting and the audit log on, log level info. "+
		"Latency is measured by the generator (includes its HTTP client).\n\n", o.users, o.duration, o.warmup)
	var skipped []string
	for _, store := range strings.Split(o.stores, ",") {
		store = strings.TrimSpace(store)
		if store == "" {
			continue
		}
		var storage string
		var cleanup func()
		switch store {
		case "sqlite":
			dir := filepath.Join(work, "http-sqlite")
			os.MkdirAll(dir, 0o700)
			storage = fmt.Sprintf("{driver: sqlite, dsn: %s}", filepath.Join(dir, "twofactor.db"))
		case "sqlite-tmpfs":
			dir, err := os.MkdirTemp("/dev/shm", "twofactor-bench-")
			if err != nil {
				skipped = append(skipped, "SQLite in tmpfs: /dev/shm is not usable: "+err.Error())
				continue
			}
			cleanup = func() { os.RemoveAll(dir) }
			storage = fmt.Sprintf("{driver: sqlite, dsn: %s}", filepath.Join(dir, "twofactor.db"))
		case "postgres":
			dsn, drop, err := postgresDSN()
			if err != nil {
				return err
			}
			if dsn == "" {
				msg := "PostgreSQL skipped: set TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run it"
				fmt.Fprintln(os.Stderr, "bench:", msg)
				skipped = append(skipped, msg)
				continue
			}
			cleanup = drop
			storage = fmt.Sprintf("{driver: postgres, dsn: '%s'}", dsn)
		default:
			return fmt.Errorf("unknown store %q (sqlite, postgres, sqlite-tmpfs)", store)
		}
		fmt.Fprintf(os.Stderr, "bench: HTTP verify on %s\n", storeLabel[store])
		lr, loaded, err := loadStore(o, bin, work, store, storage)
		if cleanup != nil {
			cleanup()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		r.http[store] = lr
		if store == "sqlite" {
			r.loadedRSS, r.loadedRSSFor = loaded, fmt.Sprintf("after enrolling %d users and %d levels of %v (+%v warm-up) on SQLite",
				o.users, len(lr.Results), o.duration, o.warmup)
		}
	}
	r.printf("| store | concurrency | req/s | p50 | p90 | p99 | max | outcomes | errors | double accepts |\n")
	r.printf("|---|---:|---:|---:|---:|---:|---:|---|---|---:|\n")
	for _, store := range strings.Split(o.stores, ",") {
		lr, ok := r.http[strings.TrimSpace(store)]
		if !ok {
			continue
		}
		for _, x := range lr.Results {
			r.printf("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %d |\n", storeLabel[store], x.Concurrency, x.RPS,
				fmtDur(x.P50), fmtDur(x.P90), fmtDur(x.P99), fmtDur(x.Max), fmtCounts(x.Outcomes), fmtCounts(x.Errors), x.DoubleAccepts)
		}
	}
	r.printf("\n")
	for _, s := range skipped {
		r.printf("- %s\n", s)
	}
	for _, store := range strings.Split(o.stores, ",") {
		lr, ok := r.http[strings.TrimSpace(store)]
		if !ok {
			continue
		}
		r.printf("- %s: enrolling %d users took %.1f s (%.0f/s); CPU seconds over the whole run: host %.1f, TOTP plugin %.1f, load generator %.1f.\n",
			storeLabel[store], lr.Users, lr.EnrollSeconds, float64(lr.Users)/lr.EnrollSeconds, lr.cpuHost, lr.cpuPlugins, lr.cpuLoad)
	}
	r.printf("\nCPU during each level (warm-up included; from /proc/PID/stat): cores busy, and CPU time per verify (CPU ÷ (req/s × wall)). "+
		"With %d CPUs, a total near %d means the machine, not the host, set the pace.\n\n", runtime.NumCPU(), runtime.NumCPU())
	r.printf("| store | concurrency | cores: host | plugin | generator | total | CPU per verify: host | plugin | generator |\n")
	r.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, store := range strings.Split(o.stores, ",") {
		lr, ok := r.http[strings.TrimSpace(store)]
		if !ok {
			continue
		}
		for i, l := range lr.levels {
			if i >= len(lr.Results) || l.wall <= 0 {
				break
			}
			x, w := lr.Results[i], l.wall.Seconds()
			n := x.RPS * w
			per := func(cpu float64) string { return fmtDur(time.Duration(cpu / n * float64(time.Second))) }
			r.printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n", storeLabel[store], x.Concurrency,
				l.host/w, l.plugins/w, l.load/w, (l.host+l.plugins+l.load)/w, per(l.host), per(l.plugins), per(l.load))
		}
	}
	r.printf("\n")
	return nil
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
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

// postgresDSN creates a fresh schema on TEST_POSTGRES_DSN and returns a DSN
// whose search_path is it, and a function dropping it; "" when unset.
func postgresDSN() (string, func(), error) {
	base := os.Getenv("TEST_POSTGRES_DSN")
	if base == "" {
		return "", nil, nil
	}
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("TEST_POSTGRES_DSN: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, drop, nil
}

// loadStore runs a host on storage and the load generator against it. It
// returns the generator's report and the RSS of the host and its plugins
// after the run.
func loadStore(o options, bin, work, store, storage string) (loadReport, []procRSS, error) {
	dir := filepath.Join(work, "host-"+store)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return loadReport{}, nil, err
	}
	cfg, url, err := writeConfig(dir, bin, storage, totpProvider)
	if err != nil {
		return loadReport{}, nil, err
	}
	h, err := startHost(bin, cfg, url, filepath.Join(dir, "host.log"))
	if err != nil {
		return loadReport{}, nil, err
	}
	defer h.stop()
	lr, err := drive(h, bin, []string{"-url", url, "-app-key", appKey, "-admin-key", adminKey,
		"-users", strconv.Itoa(o.users), "-concurrency", o.concurrency, "-duration", o.duration.String(),
		"-warmup", o.warmup.String(), "-json", "-keep"})
	if err != nil {
		return loadReport{}, nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(dir, "host.log"))
	}
	return lr, h.rss(), nil
}

// drive runs cmd/twofactor-load with args (which must include -json)
// against the server h, and returns its report with the CPU h (and its
// plugins) and the generator used over the run and over each level.
func drive(h *host, bin string, args []string) (loadReport, error) {
	hostCPU0, plugCPU0 := h.cpu()
	cmd := exec.Command(filepath.Join(bin, "twofactor-load"), args...)
	var out bytes.Buffer
	// The generator prints "enrolled …" or "loaded …" when setup is done
	// and "c=N: …" after each level: snapshot the CPU counters at each.
	var snaps []cpuSnap
	snap := func() cpuSnap {
		hc, pc := h.cpu()
		load, ok := cpuSecondsOK(cmd.Process.Pid)
		if !ok {
			load = -1 // exited: filled in from ProcessState below
		}
		return cpuSnap{at: time.Now(), host: hc, plugins: pc, load: load, switches: h.switches()}
	}
	cmd.Stdout = &out
	cmd.Stderr = &lineWatcher{onLine: func(line string) {
		if strings.HasPrefix(line, "enrolled ") || strings.HasPrefix(line, "loaded ") || strings.HasPrefix(line, "c=") {
			snaps = append(snaps, snap())
		}
	}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return loadReport{}, fmt.Errorf("twofactor-load: %w", err)
	}
	var lr loadReport
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil {
		return loadReport{}, fmt.Errorf("twofactor-load -json: %w", err)
	}
	hostCPU1, plugCPU1 := h.cpu()
	lr.cpuHost, lr.cpuPlugins = hostCPU1-hostCPU0, plugCPU1-plugCPU0
	lr.cpuLoad = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	for i := range snaps {
		if snaps[i].load < 0 {
			snaps[i].load = lr.cpuLoad
		}
	}
	for i := 1; i < len(snaps); i++ {
		a, b := snaps[i-1], snaps[i]
		lr.levels = append(lr.levels, levelCPU{wall: b.at.Sub(a.at), host: b.host - a.host, plugins: b.plugins - a.plugins, load: b.load - a.load,
			switches: b.switches - a.switches})
	}
	return lr, nil
}
