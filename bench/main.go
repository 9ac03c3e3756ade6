//go:build bench && linux

// Command bench is the driver of `make bench` (issue 7; issue 4
// acceptance 7). It builds the binaries with internal/testbin, then:
//
//   - turns `go test -bench` output (-micro FILES) into Markdown tables of
//     medians: in-process against plugin, and the bare go-plugin call;
//   - measures the disk's fsync rate: the floor of a SQLite commit with
//     synchronous=FULL;
//   - runs a real `twofactor serve` process on SQLite, on SQLite in tmpfs
//     (a diagnostic without the fsync cost) and on PostgreSQL (a fresh
//     schema; skipped, with a message, without TEST_POSTGRES_DSN), and
//     drives POST /v1/users/{user}/verify with cmd/twofactor-load at each
//     concurrency;
//   - measures startup (exec of `twofactor serve` to /readyz 200) with TOTP
//     and with TOTP and Duo (against the in-process Duo emulator), and the
//     idle RSS of the host and its provider processes;
//   - compares every figure with issue 7's goals.
//
// It prints Markdown ready for BENCHMARKS.md; -out also writes it to a file.
// It is behind the bench build tag so `go test ./...` and `go build ./...`
// leave it alone:
//
//	go run -tags bench ./bench -micro micro.txt -out tables.md
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" driver, for the commit floor

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

const (
	appKey   = "bench-app-key-0123456789abcdefghijklmnop"
	adminKey = "bench-admin-key-0123456789abcdefghijklmn"
	encKey   = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGh8="
)

// Goals of issue 7, for the comparison at the end.
const (
	goalContractRatio = 1.3                    // verify through the contract ÷ bare echo
	goalRPS           = 5000                   // verifies/s on SQLite at c=32
	goalP99           = 25 * time.Millisecond  // at c=32
	goalShareOfBare   = 0.40                   // HTTP c=32 throughput ÷ bare plugin calls at c=32
	goalStartup       = 300 * time.Millisecond // TOTP and Duo ready after exec
	goalIdleRSS       = 80 << 20               // host + two providers, idle
	goalLoadedRSS     = 150 << 20              // after 100,000 users and a 60 s run
)

type options struct {
	micro       string
	out         string
	users       int
	duration    time.Duration
	warmup      time.Duration
	concurrency string
	startups    int
	stores      string
	source      string
}

func main() {
	var o options
	flag.StringVar(&o.micro, "micro", "", "comma-separated files of `go test -bench` output to tabulate")
	flag.StringVar(&o.out, "out", "", "also write the Markdown to this file")
	flag.IntVar(&o.users, "users", 1000, "users the load generator enrolls per store")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per concurrency level")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each level")
	flag.StringVar(&o.concurrency, "concurrency", "1,8,32", "concurrency levels")
	flag.IntVar(&o.startups, "startup-runs", 5, "startup measurements per provider set (the median is reported)")
	flag.StringVar(&o.stores, "stores", "sqlite,postgres,sqlite-tmpfs", "stores to load, in order")
	flag.StringVar(&o.source, "source", "", "what source is measured (default: the git commit, and whether the work tree has changes)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		testbin.Cleanup()
		os.Exit(1)
	}
	testbin.Cleanup()
}

// report collects the sections and the figures the goals need.
type report struct {
	md bytes.Buffer

	micro        map[string]*benchSamples
	fsync        time.Duration
	commit       time.Duration
	http         map[string]loadReport // by store
	startup      map[string][]time.Duration
	idleRSS      map[string][]procRSS // by provider set
	loadedRSS    []procRSS
	loadedRSSFor string
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(&r.md, format, args...) }

func run(o options) error {
	rep := &report{http: map[string]loadReport{}, startup: map[string][]time.Duration{}, idleRSS: map[string][]procRSS{}}
	fmt.Fprintln(os.Stderr, "bench: building the binaries")
	bin, err := testbin.Dir()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "twofactor-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	rep.machine(o.source)
	if o.micro != "" {
		if err := rep.microTables(strings.Split(o.micro, ",")); err != nil {
			return err
		}
	}
	if err := rep.fsyncFloor(work); err != nil {
		return err
	}
	if err := rep.httpTables(o, bin, work); err != nil {
		return err
	}
	if err := rep.startupTable(o, bin, work); err != nil {
		return err
	}
	rep.memoryTable()
	rep.goals(o)

	os.Stdout.Write(rep.md.Bytes())
	if o.out != "" {
		return os.WriteFile(o.out, rep.md.Bytes(), 0o644)
	}
	return nil
}

// --- machine ---------------------------------------------------------------

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

// --- micro benchmarks --------------------------------------------------------

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

// --- fsync floor -------------------------------------------------------------

// fsyncFloor measures, in the folder the SQLite files go to, the two
// floors of a durable write: 4 KiB appended and fsynced, and one
// autocommit INSERT into SQLite with the store's settings (WAL,
// synchronous=FULL). Every verify commits at least once (its audit
// entry), and the store has one writer connection, so the second caps
// verifies/s on SQLite.
func (r *report) fsyncFloor(dir string) error {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	for range 200 {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	r.fsync = medianDur(lat)

	commit, err := sqliteCommit(filepath.Join(dir, "floor.db"), 300)
	if err != nil {
		return err
	}
	r.commit = commit
	r.printf("## Physical floor of a durable commit\n\n")
	r.printf("| in the SQLite folder, one after another | median | at most |\n|---|---:|---:|\n")
	r.printf("| append 4 KiB + fsync (200 times) | %s | %.0f/s |\n", fmtDur(r.fsync), float64(time.Second)/float64(r.fsync))
	r.printf("| one autocommit INSERT, SQLite WAL + synchronous=FULL (300 times) | %s | %.0f/s |\n\n", fmtDur(commit), float64(time.Second)/float64(commit))
	r.printf("Each verify commits at least once (its audit entry) and the SQLite store writes through one connection, " +
		"so the second line bounds verifies/s on SQLite unless commits are batched.\n\n")
	return nil
}

// sqliteCommit is the median time of n autocommit INSERTs into a fresh
// SQLite file opened as the store opens it.
func sqliteCommit(path string, n int) (time.Duration, error) {
	defer os.Remove(path)
	defer os.Remove(path + "-wal")
	defer os.Remove(path + "-shm")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		return 0, err
	}
	row := make([]byte, 200) // about an audit entry
	var lat []time.Duration
	for range n {
		t := time.Now()
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, row); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t))
	}
	return medianDur(lat), nil
}

// --- HTTP verify -------------------------------------------------------------

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

// cpuSnap is the CPU seconds used so far by each process, at a moment.
type cpuSnap struct {
	at                  time.Time
	host, plugins, load float64
}

// levelCPU is the CPU each process used during one level (warm-up
// included), over the level's wall time.
type levelCPU struct {
	wall                time.Duration
	host, plugins, load float64
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
	r.printf("## HTTP verify (`POST /v1/users/{user}/verify` on a real `twofactor serve`)\n\n")
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
	hostCPU0, plugCPU0 := h.cpu()
	cmd := exec.Command(filepath.Join(bin, "twofactor-load"), "-url", url, "-app-key", appKey, "-admin-key", adminKey,
		"-users", strconv.Itoa(o.users), "-concurrency", o.concurrency, "-duration", o.duration.String(),
		"-warmup", o.warmup.String(), "-json", "-keep")
	var out bytes.Buffer
	// The generator prints "enrolled …" when setup is done and "c=N: …"
	// after each level: snapshot the CPU counters at each.
	var snaps []cpuSnap
	snap := func() cpuSnap {
		hc, pc := h.cpu()
		load, ok := cpuSecondsOK(cmd.Process.Pid)
		if !ok {
			load = -1 // exited: filled in from ProcessState below
		}
		return cpuSnap{at: time.Now(), host: hc, plugins: pc, load: load}
	}
	cmd.Stdout = &out
	cmd.Stderr = &lineWatcher{onLine: func(line string) {
		if strings.HasPrefix(line, "enrolled ") || strings.HasPrefix(line, "c=") {
			snaps = append(snaps, snap())
		}
	}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return loadReport{}, nil, fmt.Errorf("twofactor-load: %w (log: %s)", err, filepath.Join(dir, "host.log"))
	}
	var lr loadReport
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil {
		return loadReport{}, nil, fmt.Errorf("twofactor-load -json: %w", err)
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
		lr.levels = append(lr.levels, levelCPU{wall: b.at.Sub(a.at), host: b.host - a.host, plugins: b.plugins - a.plugins, load: b.load - a.load})
	}
	return lr, h.rss(), nil
}

const totpProvider = `  totp:
    enabled: true
    clients: true
    settings: {issuer: Bench}
`

// writeConfig writes a host config like host/harness_test.go's, on a free
// loopback port, and returns its path and the base URL.
func writeConfig(dir, plugins, storage, providers string) (string, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	text := fmt.Sprintf(`listen: %s
encryption_key: %s
storage: %s
plugins: {dir: %s}
api_keys:
  - {name: bench-app, key: %s, scope: app}
  - {name: bench-admin, key: %s, scope: admin}
providers:
%s`, addr, encKey, storage, plugins, appKey, adminKey, providers)
	path := filepath.Join(dir, "twofactor.yaml")
	return path, "http://" + addr, os.WriteFile(path, []byte(text), 0o600)
}

// host is a running `twofactor serve`.
type host struct {
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed once the host was reaped
	ready   time.Duration // from exec to the first /readyz 200
}

var readyClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// startHost execs the host and polls /readyz every millisecond until it
// answers 200 (at most 30 s).
func startHost(bin, config, url, logPath string) (*host, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "twofactor"), "serve", "--config", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the driver dies, so does the host (and its plugins with it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { cmd.Wait(); close(exited) }()
	h := &host{cmd: cmd, logFile: logFile, exited: exited}
	deadline := start.Add(30 * time.Second)
	for {
		res, err := readyClient.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				h.ready = time.Since(start)
				return h, nil
			}
		}
		select {
		case <-exited:
			logFile.Close()
			return nil, fmt.Errorf("host exited before it was ready; see %s", logPath)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("host not ready after 30s; see %s", logPath)
		}
	}
}

// stop ends the host politely (SIGTERM) and waits for it; it reaps its
// plugins itself.
func (h *host) stop() {
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(40 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
	}
	h.logFile.Close()
}

type procRSS struct {
	name string
	pid  int
	rss  int64 // bytes
}

// rss reads VmRSS of the host and of each child (its plugins).
func (h *host) rss() []procRSS {
	pid := h.cmd.Process.Pid
	out := []procRSS{{name: "twofactor (host)", pid: pid, rss: vmRSS(pid)}}
	for _, c := range children(pid) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c))
		out = append(out, procRSS{name: filepath.Base(exe), pid: c, rss: vmRSS(c)})
	}
	return out
}

// cpu returns the CPU seconds (user+system) used so far by the host and
// by its children together.
func (h *host) cpu() (hostSec, pluginSec float64) {
	pid := h.cmd.Process.Pid
	hostSec = cpuSeconds(pid)
	for _, c := range children(pid) {
		pluginSec += cpuSeconds(c)
	}
	return hostSec, pluginSec
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// cpuSeconds is utime+stime of pid (fields 14 and 15 of /proc/PID/stat),
// in clock ticks of 1/100 s (USER_HZ is 100 on Linux).
func cpuSeconds(pid int) float64 {
	s, _ := cpuSecondsOK(pid)
	return s
}

// cpuSecondsOK is cpuSeconds, and false when the process is gone (or a
// zombie, whose counters may no longer be complete).
func cpuSecondsOK(pid int) (float64, bool) {
	f := statFields(pid)
	if len(f) < 13 || f[0] == "Z" {
		return 0, false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100, true
}

func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(c)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// --- startup and memory -----------------------------------------------------

func (r *report) startupTable(o options, bin, work string) error {
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		return err
	}
	defer emu.Close()
	ca := filepath.Join(work, "duo-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	ikey, skey := emu.Integration()
	duo := fmt.Sprintf(`  duo:
    enabled: true
    staff: true
    settings:
      integration_key: %s
      secret_key: %s
      api_hostname: %s
      allow_custom_host: true
      ca_file: %s
      failmode: secure
      timeout: 2s
`, ikey, skey, emu.Host(), ca)
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

// --- goals -------------------------------------------------------------------

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func (r *report) goals(o options) {
	r.printf("## Goals of issue 7 (computed from this run)\n\n")
	ns := func(name string) float64 {
		if s, ok := r.micro[name]; ok {
			return median(s.ns)
		}
		return math.NaN()
	}
	echoSeq, verifySeq := ns("PluginCall/echo-mtls/seq"), ns("PluginCall/verify-mtls/seq")
	echo32 := ns("PluginCall/echo-mtls/c=32")
	extra := func(name, unit string) float64 {
		if s, ok := r.micro[name]; ok {
			return median(s.extra[unit])
		}
		return math.NaN()
	}
	pairRatio := extra("PluginCallPaired", "verify/echo")
	switch {
	case !math.IsNaN(pairRatio):
		r.printf("1. Contract overhead: a TOTP Verify through the contract against a bare go-plugin gRPC echo of the same payload size, "+
			"both over AutoMTLS, one caller, measured in alternating pairs: %s against %s, **%.2f×** (median of %d runs; goal ≤ %.1f×): %s.",
			fmtNs(extra("PluginCallPaired", "verify-ns/call")), fmtNs(extra("PluginCallPaired", "echo-ns/call")), pairRatio,
			len(r.micro["PluginCallPaired"].extra["verify/echo"]), goalContractRatio, verdict(pairRatio <= goalContractRatio))
		if pairRatio > goalContractRatio {
			r.printf(" The gap: %.2f× over the goal, %.0f%% of contract overhead over the transport against ≤ %.0f%%.",
				pairRatio-goalContractRatio, (pairRatio-1)*100, (goalContractRatio-1)*100)
		}
		if !math.IsNaN(echoSeq) && !math.IsNaN(verifySeq) {
			r.printf(" Run one after the other instead: %s against %s (%.2f×).", fmtNs(verifySeq), fmtNs(echoSeq), verifySeq/echoSeq)
		}
	case !math.IsNaN(echoSeq) && !math.IsNaN(verifySeq):
		ratio := verifySeq / echoSeq
		r.printf("1. Contract overhead: TOTP Verify through the contract %s against a bare go-plugin gRPC echo of the same payload size %s (both AutoMTLS, one caller): "+
			"%.2f× (goal ≤ %.1f×): %s.", fmtNs(verifySeq), fmtNs(echoSeq), ratio, goalContractRatio, verdict(ratio <= goalContractRatio))
	default:
		r.printf("1. Contract overhead: not measured (run with the bench/plugincall benchmarks in -micro).\n")
	}
	if v32 := ns("PluginCall/verify-mtls/c=32"); !math.IsNaN(v32) && !math.IsNaN(echo32) {
		r.printf(" With 32 callers: %.0f Verify calls/s against %.0f echo calls/s (%.2f× the time per call).\n", 1e9/v32, 1e9/echo32, v32/echo32)
	} else {
		r.printf("\n")
	}
	if lr, ok := r.http["sqlite"]; ok {
		if x, ok := level(lr, 32); ok {
			short := ""
			if x.RPS < goalRPS {
				short = fmt.Sprintf(", %.1f× short", goalRPS/x.RPS)
			}
			r.printf("2. End-to-end on SQLite at c=32: %.0f verifies/s (goal ≥ %d: %s%s), p99 %s (goal ≤ %s: %s)",
				x.RPS, goalRPS, verdict(x.RPS >= goalRPS), short, fmtDur(x.P99), fmtDur(goalP99), verdict(x.P99 <= goalP99))
			if !math.IsNaN(echo32) {
				share := x.RPS / (1e9 / echo32)
				r.printf("; %.0f%% of the bare plugin-call throughput at 32 callers (%.0f/s; goal ≥ %.0f%%: %s)", share*100, 1e9/echo32, goalShareOfBare*100, verdict(share >= goalShareOfBare))
			}
			r.printf(".")
			if pg, ok := r.http["postgres"]; ok {
				if y, ok := level(pg, 32); ok {
					r.printf(" PostgreSQL at c=32: %.0f verifies/s, p99 %s.", y.RPS, fmtDur(y.P99))
				}
			}
			if tm, ok := r.http["sqlite-tmpfs"]; ok {
				if y, ok := level(tm, 32); ok {
					r.printf(" SQLite in tmpfs (no fsync) at c=32: %.0f verifies/s, p99 %s.", y.RPS, fmtDur(y.P99))
				}
			}
			r.printf("\n")
		}
	} else {
		r.printf("2. End-to-end: not measured.\n")
	}
	if v, ok := r.startup["TOTP + Duo"]; ok {
		m := medianDur(v)
		r.printf("3. Startup with TOTP and Duo on SQLite: median %s (goal ≤ %s): %s.\n", fmtDur(m), fmtDur(goalStartup), verdict(m <= goalStartup))
	}
	if ps, ok := r.idleRSS["TOTP + Duo"]; ok {
		t := totalRSS(ps)
		r.printf("4. Memory: host + two providers idle %s (goal ≤ %s): %s", fmtMiB(t), fmtMiB(goalIdleRSS), verdict(t <= goalIdleRSS))
		if r.loadedRSS != nil {
			r.printf("; host + TOTP %s %s (the goal's 100,000 users and 60 s run: **not measured**; goal ≤ %s)", r.loadedRSSFor, fmtMiB(totalRSS(r.loadedRSS)), fmtMiB(goalLoadedRSS))
		}
		r.printf(".\n")
	}
	r.printf("5. Scale (1,000 to 1,000,000 users): **not measured**.\n\n")
	r.printf("Load average at the end: %s.\n", loadavg())
}

func level(lr loadReport, c int) (loadResult, bool) {
	for _, x := range lr.Results {
		if x.Concurrency == c {
			return x, true
		}
	}
	return loadResult{}, false
}
