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
//   - fills a store per population (1,000 to 1,000,000 users) through
//     `twofactor import`, the bulk path, and measures verify at a fixed
//     concurrency on each, in rounds (scale.go); then loads the SQLite
//     host of 100,000 users for 60 s and reads the RSS of the host and its
//     TOTP and Duo processes (goal 4 as specified);
//   - compares every figure with issue 7's goals.
//
// Before all of that but the floor (issue 16), logins.go measures first-use
// logins (cmd/twofactor-load -mode first-use: every request a login that
// writes the user's state) on SQLite and PostgreSQL against the bare
// baseline (bench/bare, built here: net/http + pquerna/otp from memory),
// with wrong codes and replays as labelled rows, and goals16.go computes
// issue 16's goals from them; -cpuprofile writes the SQLite login host's
// CPU profile, and its TOTP plugin's beside it.
//
// Files: main.go (flags, the run), machine.go, micro.go (go test -bench
// output), floor.go (the fsync floor), logins.go and goals16.go (issue
// 16), http.go (HTTP verify of the freshest code), process.go
// (hosts, and RSS and CPU from /proc), startup.go (startup and memory),
// scale.go (the bulk-filled populations) and goals.go.
//
// It prints Markdown ready for BENCHMARKS.md; -out also writes it to a file.
// It is behind the bench build tag so `go test ./...` and `go build ./...`
// leave it alone:
//
//	go run -tags bench ./bench -micro micro.txt -out tables.md
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// The keys of the hosts the bench starts, fresh each run: the config
// refuses weak or well-known keys, and a fixed key in the source is one.
var (
	appKey   = randomKey(hex.EncodeToString)
	adminKey = randomKey(hex.EncodeToString)
	encKey   = randomKey(base64.StdEncoding.EncodeToString)
)

// randomKey is 32 bytes from crypto/rand, encoded.
func randomKey(encode func([]byte) string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return encode(b)
}

// Goals of issue 7, for the comparison at the end.
const (
	goalContractRatio = 1.3                    // verify through the contract ÷ bare echo
	goalRPS           = 5000                   // verifies/s on SQLite at c=32
	goalP99           = 25 * time.Millisecond  // at c=32
	goalShareOfBare   = 0.40                   // HTTP c=32 throughput ÷ bare plugin calls at c=32
	goalStartup       = 300 * time.Millisecond // TOTP and Duo ready after exec
	goalIdleRSS       = 80 << 20               // host + two providers, idle
	goalLoadedRSS     = 150 << 20              // after 100,000 users and a 60 s run
	goalScaleRatio    = 1.2                    // verify p50 at 1,000,000 users ÷ at 1,000
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

	scaleUsers        string // populations of the scale table
	scaleStores       string
	scaleRuns         int
	scaleSample       int
	scaleConcurrency  int
	scaleDuration     time.Duration
	scaleWarmup       time.Duration
	memoryUsers       int // the population of goal 4's loaded measurement (SQLite)
	memoryDuration    time.Duration
	memoryConcurrency int

	loginUsers       int // issue 16: users of the first-use workload
	wrongUsers       int
	replayUsers      int
	loginConcurrency string
	loginStores      string
	cpuprofile       string
}

func main() {
	var o options
	flag.StringVar(&o.micro, "micro", "", "comma-separated files of `go test -bench` output to tabulate")
	flag.StringVar(&o.out, "out", "", "also write the Markdown to this file")
	flag.IntVar(&o.users, "users", 1000, "users the load generator enrolls per store")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per concurrency level")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each level")
	flag.StringVar(&o.concurrency, "concurrency", "1,8,32", "concurrency levels")
	flag.IntVar(&o.startups, "startup-runs", 5, "startup measurements per provider set (the median is reported; 0 skips the startup table)")
	flag.StringVar(&o.stores, "stores", "sqlite,postgres,sqlite-tmpfs", "stores to load, in order")
	flag.StringVar(&o.source, "source", "", "what source is measured (default: the git commit, and whether the work tree has changes)")
	flag.StringVar(&o.scaleUsers, "scale-users", "1000,10000,100000,1000000", "populations of the scale table, imported with `twofactor import` (\"\" skips it)")
	flag.StringVar(&o.scaleStores, "scale-stores", "sqlite,postgres", "stores of the scale table")
	flag.IntVar(&o.scaleRuns, "scale-runs", 5, "rounds over the populations (medians are reported)")
	flag.IntVar(&o.scaleSample, "scale-sample", 100, "users verified per scale run, picked at random across the population (each run its own)")
	flag.IntVar(&o.scaleConcurrency, "scale-concurrency", 8, "concurrency of the scale runs")
	flag.DurationVar(&o.scaleDuration, "scale-duration", 1250*time.Millisecond, "measured time of one scale run")
	flag.DurationVar(&o.scaleWarmup, "scale-warmup", 750*time.Millisecond, "unmeasured load before each scale run")
	flag.IntVar(&o.memoryUsers, "memory-users", 100000, "population (one of -scale-users) whose SQLite host gets goal 4's load run")
	flag.DurationVar(&o.memoryDuration, "memory-duration", 60*time.Second, "goal 4's load run (0 skips it)")
	flag.IntVar(&o.memoryConcurrency, "memory-concurrency", 32, "concurrency of goal 4's load run")
	flag.IntVar(&o.loginUsers, "login-users", 400000, "users imported for the first-use login workload (0 skips the login table)")
	flag.IntVar(&o.wrongUsers, "wrong-users", 50000, "users imported for the wrong-code workload (4 wrong codes each at most)")
	flag.IntVar(&o.replayUsers, "replay-users", 1000, "users imported for the replay workload")
	flag.StringVar(&o.loginConcurrency, "login-concurrency", "1,8,32", "concurrency levels of the first-use logins (PostgreSQL: the last only)")
	flag.StringVar(&o.loginStores, "login-stores", "sqlite,postgres", "stores of the login table")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the CPU profile of the SQLite login host (all its workloads) to this file, and its plugins' to FILE-NAME-PID.prof")
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

	logins       []loginRow // issue 16's table
	loginSkipped []string
	replayUsers  int

	micro        map[string]*benchSamples
	fsync        time.Duration
	commit       time.Duration
	http         map[string]loadReport // by store
	startup      map[string][]time.Duration
	idleRSS      map[string][]procRSS // by provider set
	loadedRSS    []procRSS
	loadedRSSFor string

	scale            []*scaleStore
	scaleSkipped     []string
	scaleConcurrency int
	memory           *memoryRun // goal 4 as specified: 100,000 users, 60 s of load
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
	rep.replayUsers = o.replayUsers
	if err := rep.loginTables(o, bin, work); err != nil {
		return err
	}
	rep.goals16()
	if err := rep.httpTables(o, bin, work); err != nil {
		return err
	}
	duo, stopDuo, err := startDuo(work)
	if err != nil {
		return err
	}
	defer stopDuo()
	if err := rep.startupTable(o, bin, work, duo); err != nil {
		return err
	}
	rep.scaleConcurrency = o.scaleConcurrency
	if err := rep.scaleTables(o, bin, work, duo); err != nil {
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
