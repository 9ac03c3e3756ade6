//go:build bench && linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// scaleLevel is one population: a store filled through `twofactor
// import`, its host, and the verify runs against it.
type scaleLevel struct {
	users      int
	file       string   // every user
	samples    []string // one random sample of users a run, disjoint
	importWall time.Duration
	checkTime  time.Duration // the import's first pass (checking the file)
	writeTime  time.Duration // its second pass (sealing and writing)
	runs       []loadResult
	h          *host
	url        string
	cleanup    func()
}

// scaleStore is one store's levels, and the memory run (on SQLite).
type scaleStore struct {
	store  string
	levels []*scaleLevel
}

// memoryRun is goal 4's loaded measurement.
type memoryRun struct {
	users         int
	before, after []procRSS // after the scale runs; after the memory run
	result        loadResult
	concurrency   int
	duration      time.Duration
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// writeUsers writes n users with random 160-bit secrets as the CSV
// `twofactor import` reads, and runs files of sample users each for the
// load generator: disjoint, and together a uniform random subset of the n
// (reservoir sampling), so every run verifies users spread over the whole
// population that no earlier run used. When n < runs*sample, each file
// gets n/runs users.
func writeUsers(path, sampleBase string, n, sample, runs int, rng *rand.Rand) ([]string, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	sample = min(sample, n/runs)
	pick := sample * runs
	picked := make([]string, 0, pick)
	key := make([]byte, 20)
	var line []byte
	for i := range n {
		line = userLine(line[:0], i, key, rng)
		w.Write(line)
		if len(picked) < pick {
			picked = append(picked, string(line))
		} else if k := rng.IntN(i + 1); k < pick {
			picked[k] = string(line)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	var files []string
	for r := range runs {
		name := fmt.Sprintf("%s-%d.csv", sampleBase, r)
		if err := os.WriteFile(name, []byte(strings.Join(picked[r*sample:(r+1)*sample], "")), 0o600); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

// userLine appends user i's line of a `twofactor import` CSV to line: the
// id user-NNNNNNN and a random secret of len(key) bytes (key is scratch).
func userLine(line []byte, i int, key []byte, rng *rand.Rand) []byte {
	for j := 0; j < len(key); j += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && j+k < len(key); k++ {
			key[j+k] = byte(v >> (8 * k))
		}
	}
	return fmt.Appendf(line, "user-%07d,%s\n", i, b32.EncodeToString(key))
}

// stepAligned waits, if need be, for the next 30-second TOTP step, so
// that a run of d starting now stays inside one step. Each run's users
// are fresh: their first verify (an allow, with its state write) comes in
// the warm-up, and every measured verify is a replay that runs the whole
// read path (attempt budget, enrollment lookup, unseal, plugin call, audit
// commit). A step boundary inside a run would add a second allow per user
// to some runs and not others.
func stepAligned(d time.Duration) {
	const step = 30 * time.Second
	left := step - time.Duration(time.Now().UnixNano())%step
	if left < d {
		time.Sleep(left + 100*time.Millisecond)
	}
}

var (
	importedLine = regexp.MustCompile(`(?m)^imported (\d+) users into totp in (\S+) `)
	checkedLine  = regexp.MustCompile(`(?m)^checked (\d+) users in (\S+)`)
)

// importUsers runs `twofactor import` and returns its wall time and the
// durations of its two passes as it reports them.
func importUsers(bin, cfg, file string, want int) (wall, check, write time.Duration, err error) {
	if err := initStore(bin, cfg); err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	cmd := exec.Command(filepath.Join(bin, "twofactor"), "import", "--config", cfg, file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("twofactor import: %w: %s", err, bytes.TrimSpace(out))
	}
	m, c := importedLine.FindSubmatch(out), checkedLine.FindSubmatch(out)
	if m == nil || c == nil || string(m[1]) != strconv.Itoa(want) {
		return 0, 0, 0, fmt.Errorf("twofactor import: unexpected output %q", out)
	}
	write, _ = time.ParseDuration(string(m[2]))
	check, _ = time.ParseDuration(string(c[2]))
	settleDisk()
	return wall, check, write, nil
}

// settleDisk writes out what an import left dirty before anything is
// measured: the kernel's dirty pages (sync) and PostgreSQL's (a
// CHECKPOINT, when TEST_POSTGRES_DSN is set). Without it the kernel and
// the checkpointer flush a few hundred megabytes of import during the
// first level measured, whose fsyncs then wait behind them: alternated
// A/B runs of the login bench were 10-20% worse in whichever ran second,
// whatever the code, and the c=1 level, measured right after the import,
// against an fsync floor measured before it.
func settleDisk() {
	syscall.Sync()
	dsn := os.Getenv("TEST_POSTGRES_DSN")
	if dsn == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		_, err = conn.Exec(ctx, "CHECKPOINT")
		conn.Close(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: PostgreSQL CHECKPOINT after the import: %v (measuring anyway)\n", err)
	}
}

// runLoad runs the generator once against url and returns its one level.
func runLoad(bin, url string, args ...string) (loadResult, error) {
	cmd := exec.Command(filepath.Join(bin, "twofactor-load"), append([]string{"-url", url, "-app-key", appKey, "-admin-key", adminKey, "-json"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("twofactor-load: %w: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	var lr loadReport
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil || len(lr.Results) != 1 {
		return loadResult{}, fmt.Errorf("twofactor-load -json: %v (%d levels)", err, len(lr.Results))
	}
	return lr.Results[0], nil
}

// scaleTables fills a store per population through the bulk path, starts
// a host on each (TOTP and Duo, as in production), and measures verify on
// all of them in rounds, one population after another in each round, so
// the machine's changing background load spreads over every population
// alike. Then, on the SQLite store of o.memoryUsers users, it runs goal 4's
// load and reads the RSS of the host and both providers.
func (r *report) scaleTables(o options, bin, work, duo string) error {
	var sizes []int
	for _, f := range strings.Split(o.scaleUsers, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("-scale-users: %q is not a positive number", f)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		return nil
	}
	dir := filepath.Join(work, "scale")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	type userFiles struct {
		all     string
		samples []string
	}
	files := map[int]userFiles{}
	began := time.Now()
	for _, n := range sizes {
		f := filepath.Join(dir, fmt.Sprintf("users-%d.csv", n))
		samples, err := writeUsers(f, filepath.Join(dir, fmt.Sprintf("sample-%d", n)), n, o.scaleSample, o.scaleRuns, rng)
		if err != nil {
			return err
		}
		files[n] = userFiles{f, samples}
	}
	fmt.Fprintf(os.Stderr, "bench: scale: wrote the user files in %v\n", time.Since(began).Round(time.Millisecond))
	for _, store := range strings.Split(o.scaleStores, ",") {
		if store = strings.TrimSpace(store); store == "" {
			continue
		}
		levels := make([]*scaleLevel, len(sizes))
		for i, n := range sizes {
			levels[i] = &scaleLevel{users: n, file: files[n].all, samples: files[n].samples}
		}
		t0 := time.Now()
		ss, err := r.scaleStore(o, bin, dir, duo, store, levels)
		if err != nil {
			return fmt.Errorf("scale on %s: %w", store, err)
		}
		fmt.Fprintf(os.Stderr, "bench: scale on %s took %v\n", storeLabel[store], time.Since(t0).Round(time.Second))
		if ss != nil {
			r.scale = append(r.scale, ss)
		}
	}
	r.printScale(o)
	return nil
}

func (r *report) scaleStore(o options, bin, dir, duo, store string, levels []*scaleLevel) (*scaleStore, error) {
	ss := &scaleStore{store: store, levels: levels}
	defer func() {
		for _, l := range ss.levels {
			if l.h != nil {
				l.h.stop()
			}
			if l.cleanup != nil {
				l.cleanup()
			}
		}
	}()
	for _, l := range levels {
		n := l.users
		hdir := filepath.Join(dir, fmt.Sprintf("%s-%d", store, n))
		if err := os.MkdirAll(hdir, 0o700); err != nil {
			return nil, err
		}
		var storage string
		switch store {
		case "sqlite":
			storage = fmt.Sprintf("{driver: sqlite, dsn: %s}", filepath.Join(hdir, "twofactor.db"))
		case "postgres":
			dsn, drop, err := postgresDSN()
			if err != nil {
				return nil, err
			}
			if dsn == "" {
				r.scaleSkipped = append(r.scaleSkipped, "PostgreSQL skipped: TEST_POSTGRES_DSN is not set")
				return nil, nil
			}
			l.cleanup = drop
			storage = fmt.Sprintf("{driver: postgres, dsn: '%s'}", dsn)
		default:
			return nil, fmt.Errorf("unknown store %q (sqlite, postgres)", store)
		}
		cfg, url, err := writeConfig(hdir, bin, storage, totpProvider+duo)
		if err != nil {
			return nil, err
		}
		l.url = url
		fmt.Fprintf(os.Stderr, "bench: scale: importing %d users into %s\n", n, storeLabel[store])
		if l.importWall, l.checkTime, l.writeTime, err = importUsers(bin, cfg, l.file, n); err != nil {
			return nil, err
		}
		if l.h, err = startHost(bin, cfg, url, filepath.Join(hdir, "host.log")); err != nil {
			return nil, err
		}
	}
	args := func(sample string, users, c int, warmup, d time.Duration) []string {
		return []string{"-users-file", sample, "-users", strconv.Itoa(users), "-concurrency", strconv.Itoa(c),
			"-warmup", warmup.String(), "-duration", d.String()}
	}
	for round := range o.scaleRuns {
		fmt.Fprintf(os.Stderr, "bench: scale on %s: round %d of %d\n", storeLabel[store], round+1, o.scaleRuns)
		for _, l := range ss.levels {
			// The generator starts in well under a second.
			stepAligned(o.scaleWarmup + o.scaleDuration + time.Second)
			res, err := runLoad(bin, l.url, args(l.samples[round], o.scaleSample, o.scaleConcurrency, o.scaleWarmup, o.scaleDuration)...)
			if err != nil {
				return nil, fmt.Errorf("%d users: %w", l.users, err)
			}
			l.runs = append(l.runs, res)
		}
	}
	if store != "sqlite" || o.memoryDuration <= 0 {
		return ss, nil
	}
	for _, l := range ss.levels {
		if l.users != o.memoryUsers {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: memory: %v of load on the %d-user SQLite host\n", o.memoryDuration, l.users)
		// Every user, not a sample: most verifies are then first uses of a
		// code, allowed, and write the user's new state.
		m := &memoryRun{users: l.users, before: l.h.rss(), concurrency: o.memoryConcurrency, duration: o.memoryDuration}
		res, err := runLoad(bin, l.url, args(l.file, l.users, o.memoryConcurrency, 0, o.memoryDuration)...)
		if err != nil {
			return nil, fmt.Errorf("memory run: %w", err)
		}
		m.result, m.after = res, l.h.rss()
		r.memory = m
	}
	return ss, nil
}

// medianOf is the median of f over the runs.
func medianOf(runs []loadResult, f func(loadResult) float64) float64 {
	v := make([]float64, len(runs))
	for i, x := range runs {
		v[i] = f(x)
	}
	return median(v)
}

func p50(x loadResult) float64 { return float64(x.P50) }

// p50Ratios is each level's median p50 over the first level's.
func (ss *scaleStore) p50Ratios() []float64 {
	out := make([]float64, len(ss.levels))
	base := medianOf(ss.levels[0].runs, p50)
	for i, l := range ss.levels {
		out[i] = medianOf(l.runs, p50) / base
	}
	return out
}

func (r *report) printScale(o options) {
	r.printf("## Scale: verify against 1,000 to 1,000,000 enrolled users\n\n")
	r.printf("Each population is a fresh store filled by `twofactor import` (the bulk path: one transaction per 5,000 users) with random 160-bit secrets, "+
		"served by its own `twofactor serve` with TOTP and Duo, all running at once. %d rounds; each round runs `cmd/twofactor-load` against every "+
		"population in turn, so the machine's changing background load falls on all of them alike. A run verifies %d users picked at random "+
		"across the whole population and used by no other run (`-users-file`), at concurrency %d, for %v after %v of warm-up, inside one "+
		"30-second TOTP step: each user's first verify, an allow that writes the new state, falls in the warm-up, and every measured verify "+
		"is a replay of that code, which runs the whole read path (attempt budget, enrollment lookup, unseal, plugin call, audit commit). "+
		"Figures are medians over the rounds (p50 min – max in brackets).\n\n",
		o.scaleRuns, o.scaleSample, o.scaleConcurrency, o.scaleDuration, o.scaleWarmup)
	r.printf("| store | users | req/s | p50 | p90 | p99 | p50 ÷ p50 at %s users | outcomes (all rounds) | errors |\n", fmtInt(o.firstScale()))
	r.printf("|---|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, ss := range r.scale {
		ratios := ss.p50Ratios()
		for i, l := range ss.levels {
			lo, hi := time.Duration(1<<62), time.Duration(0)
			outcomes, errs := map[string]int{}, map[string]int{}
			for _, x := range l.runs {
				lo, hi = min(lo, x.P50), max(hi, x.P50)
				for k, v := range x.Outcomes {
					outcomes[k] += v
				}
				for k, v := range x.Errors {
					errs[k] += v
				}
			}
			r.printf("| %s | %s | %.0f | %s (%s – %s) | %s | %s | %.2f | %s | %s |\n", storeLabel[ss.store], fmtInt(l.users),
				medianOf(l.runs, func(x loadResult) float64 { return x.RPS }),
				fmtDur(time.Duration(medianOf(l.runs, p50))), fmtDur(lo), fmtDur(hi),
				fmtDur(time.Duration(medianOf(l.runs, func(x loadResult) float64 { return float64(x.P90) }))),
				fmtDur(time.Duration(medianOf(l.runs, func(x loadResult) float64 { return float64(x.P99) }))),
				ratios[i], fmtCounts(outcomes), fmtCounts(errs))
		}
	}
	r.printf("\n")
	for _, s := range r.scaleSkipped {
		r.printf("- %s\n", s)
	}
	r.printf("Import (`twofactor import` of a CSV, as an admin migrating from another TOTP would run it; wall time of the whole command, " +
		"then its two passes: checking every line before writing anything, and building, sealing and writing the states):\n\n")
	r.printf("| store | users | whole command | check pass | write pass | users/s written | users/s overall |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, ss := range r.scale {
		for _, l := range ss.levels {
			r.printf("| %s | %s | %.1f s | %.1f s | %.1f s | %s | %s |\n", storeLabel[ss.store], fmtInt(l.users),
				l.importWall.Seconds(), l.checkTime.Seconds(), l.writeTime.Seconds(),
				fmtInt(int(float64(l.users)/l.writeTime.Seconds())), fmtInt(int(float64(l.users)/l.importWall.Seconds())))
		}
	}
	r.printf("\n")
}

func (o options) firstScale() int {
	n, _ := strconv.Atoi(strings.TrimSpace(strings.Split(o.scaleUsers, ",")[0]))
	return n
}

// fmtInt writes n with thousands separators: 1,000,000.
func fmtInt(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
