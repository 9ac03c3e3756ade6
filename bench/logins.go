//go:build bench && linux

package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// loginRow is one row of the login table: a workload at one concurrency
// on one server, with the CPU its server and the generator used.
type loginRow struct {
	server   string // "bare baseline", "SQLite", "PostgreSQL"
	workload string // workloadFirstUse, …
	x        loadResult
	cpu      levelCPU
}

// The workloads of the login table, as they are labelled.
const (
	workloadFirstUse = "first-use logins"
	workloadWrong    = "wrong codes (≤ 4 a user)"
	workloadReplay   = "replays (freshest code of few users)"
)

// userSets are the files of the login section: every user (imported into
// the host's store) and three disjoint parts, one per workload, so that no
// workload spends another's codes or attempt budget.
type userSets struct {
	all, firstUse, wrong, replay string
	total                        int
}

// writeUserSets writes n[0] first-use, n[1] wrong-code and n[2] replay
// users with random secrets.
func writeUserSets(dir string, n [3]int, rng *rand.Rand) (userSets, error) {
	us := userSets{all: filepath.Join(dir, "all.csv"), firstUse: filepath.Join(dir, "first-use.csv"),
		wrong: filepath.Join(dir, "wrong.csv"), replay: filepath.Join(dir, "replay.csv"), total: n[0] + n[1] + n[2]}
	all, err := os.Create(us.all)
	if err != nil {
		return us, err
	}
	defer all.Close()
	wAll := bufio.NewWriterSize(all, 1<<20)
	key := make([]byte, 20)
	var line []byte
	i := 0
	for part, name := range []string{us.firstUse, us.wrong, us.replay} {
		f, err := os.Create(name)
		if err != nil {
			return us, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for range n[part] {
			line = userLine(line[:0], i, key, rng)
			i++
			w.Write(line)
			wAll.Write(line)
		}
		err = w.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return us, err
		}
	}
	if err := wAll.Flush(); err != nil {
		return us, err
	}
	return us, all.Close()
}

// loginArgs are the generator's arguments for a workload over a users file.
func loginArgs(o options, url, mode, file string, users int, concurrency string) []string {
	return []string{"-url", url, "-app-key", appKey, "-json", "-mode", mode, "-users-file", file,
		"-users", strconv.Itoa(users), "-concurrency", concurrency,
		"-duration", o.duration.String(), "-warmup", o.warmup.String()}
}

// addRows appends a row per level of lr.
func (r *report) addRows(server, workload string, lr loadReport) {
	for i, x := range lr.Results {
		var l levelCPU
		if i < len(lr.levels) {
			l = lr.levels[i]
		}
		r.logins = append(r.logins, loginRow{server: server, workload: workload, x: x, cpu: l})
	}
}

// loginTables is issue 16's measurement: first-use logins on the host
// against the bare baseline, then wrong codes and replays, labelled.
func (r *report) loginTables(o options, bin, work string) error {
	if o.loginUsers <= 0 {
		return nil
	}
	dir := filepath.Join(work, "logins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	us, err := writeUserSets(dir, [3]int{o.loginUsers, o.wrongUsers, o.replayUsers}, rng)
	if err != nil {
		return err
	}
	if err := r.bareRows(o, bin, dir, us); err != nil {
		return fmt.Errorf("bare baseline: %w", err)
	}
	for _, store := range strings.Split(o.loginStores, ",") {
		switch store = strings.TrimSpace(store); store {
		case "":
		case "sqlite", "postgres":
			if err := r.hostLoginRows(o, bin, dir, store, us); err != nil {
				return fmt.Errorf("logins on %s: %w", store, err)
			}
		default:
			return fmt.Errorf("-login-stores: unknown store %q (sqlite, postgres)", store)
		}
	}
	r.printLogins(o)
	return nil
}

// bareRows builds and starts bench/bare on the first-use users and loads
// it at each concurrency. The bare server keeps no state, so each level is
// a generator of its own, with every user's codes fresh again: the same
// first-use workload, with no risk of running out of codes at its speed.
func (r *report) bareRows(o options, bin, dir string, us userSets) error {
	exe := filepath.Join(dir, "bare")
	build := exec.Command("go", "build", "-tags", "bench", "-o", exe, "./bench/bare")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./bench/bare (run the driver from the repository root): %w: %s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	url := "http://" + addr
	cmd := exec.Command(exe, "-listen", addr, us.firstUse)
	cmd.Env = append(os.Environ(), "APP_KEY="+appKey)
	h, err := startServer(cmd, url, filepath.Join(dir, "bare.log"))
	if err != nil {
		return err
	}
	defer h.stop()
	for _, c := range strings.Split(o.loginConcurrency, ",") {
		fmt.Fprintf(os.Stderr, "bench: logins: bare baseline at c=%s\n", c)
		lr, err := drive(h, bin, loginArgs(o, url, "first-use", us.firstUse, o.loginUsers, strings.TrimSpace(c)))
		if err != nil {
			return err
		}
		r.addRows("bare baseline", workloadFirstUse, lr)
	}
	return nil
}

// hostLoginRows imports the users into a fresh store, starts a host on it
// and runs the workloads. The first-use levels run in one generator, which
// keeps each user's last step across them: a new generator would resend
// steps the host already accepted. PostgreSQL gets the first-use workload
// at the highest concurrency only (the goal).
func (r *report) hostLoginRows(o options, bin, dir, store string, us userSets) error {
	hdir := filepath.Join(dir, store)
	if err := os.MkdirAll(hdir, 0o700); err != nil {
		return err
	}
	concurrency := o.loginConcurrency
	var storage string
	var env []string
	switch store {
	case "sqlite":
		storage = fmt.Sprintf("{driver: sqlite, dsn: %s}", filepath.Join(hdir, "twofactor.db"))
		if o.cpuprofile != "" {
			abs, err := filepath.Abs(o.cpuprofile)
			if err != nil {
				return err
			}
			// The host's profile, and each plugin's beside it
			// (sdk.EnvCPUProfile: ABS-NAME-PID.prof).
			env = append(env, "TF_CPUPROFILE="+abs, sdk.EnvCPUProfile+"="+abs)
		}
	case "postgres":
		dsn, drop, err := postgresDSN()
		if err != nil {
			return err
		}
		if dsn == "" {
			r.loginSkipped = append(r.loginSkipped, "PostgreSQL skipped: set TEST_POSTGRES_DSN to run it")
			return nil
		}
		defer drop()
		storage = fmt.Sprintf("{driver: postgres, dsn: '%s'}", dsn)
		cs := strings.Split(concurrency, ",")
		concurrency = strings.TrimSpace(cs[len(cs)-1])
	}
	cfg, url, err := writeConfig(hdir, bin, storage, totpProvider)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: logins: importing %d users into %s\n", us.total, storeLabel[store])
	if _, _, _, err := importUsers(bin, cfg, us.all, us.total); err != nil {
		return err
	}
	logPath := filepath.Join(hdir, "host.log")
	h, err := startHost(bin, cfg, url, logPath, env...)
	if err != nil {
		return err
	}
	defer h.stop()
	runs := []struct {
		workload, mode, file, concurrency string
		users                             int
	}{
		{workloadFirstUse, "first-use", us.firstUse, concurrency, o.loginUsers},
		{workloadWrong, "wrong", us.wrong, "32", o.wrongUsers},
		{workloadReplay, "freshest", us.replay, "32", o.replayUsers},
	}
	if store != "sqlite" {
		runs = runs[:1]
	}
	for _, run := range runs {
		fmt.Fprintf(os.Stderr, "bench: logins: %s, %s at c=%s\n", storeLabel[store], run.workload, run.concurrency)
		lr, err := drive(h, bin, loginArgs(o, url, run.mode, run.file, run.users, run.concurrency))
		if err != nil {
			return fmt.Errorf("%s: %w (log: %s)", run.workload, err, logPath)
		}
		r.addRows(storeLabel[store], run.workload, lr)
	}
	return nil
}

// bareAt is the bare baseline's row at concurrency c.
func (r *report) bareAt(c int) (loginRow, bool) {
	return r.loginAt("bare baseline", workloadFirstUse, c)
}

func (r *report) loginAt(server, workload string, c int) (loginRow, bool) {
	for _, row := range r.logins {
		if row.server == server && row.workload == workload && row.x.Concurrency == c {
			return row, true
		}
	}
	return loginRow{}, false
}

// perRequest is the CPU a process used per request over a level: CPU ÷
// (req/s × wall), the warm-up's requests counted at the measured rate.
func (row loginRow) perRequest(cpu float64) time.Duration {
	n := row.x.RPS * row.cpu.wall.Seconds()
	if n <= 0 {
		return 0
	}
	return time.Duration(cpu / n * float64(time.Second))
}

// serverCPU is the server's (host + plugins) CPU per request.
func (row loginRow) serverCPU() time.Duration { return row.perRequest(row.cpu.host + row.cpu.plugins) }

// serverSwitches is the server's (host + plugins) context switches per
// request, counted like perRequest.
func (row loginRow) serverSwitches() string {
	n := row.x.RPS * row.cpu.wall.Seconds()
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(row.cpu.switches)/n)
}

// allFirstUse says the row's every request was a first use the server
// allowed, with no error: the workload it claims to be.
func (row loginRow) allFirstUse() bool {
	return row.x.Requests > 0 && row.x.Outcomes["allow"] == row.x.Requests && len(row.x.Errors) == 0 && row.x.DoubleAccepts == 0
}

func (r *report) printLogins(o options) {
	r.printf("## Logins against the bare baseline (issue 16)\n\n")
	r.printf("`cmd/twofactor-load -mode first-use`: every request is the first use of a valid TOTP code (per user, steps in increasing order, "+
		"never two in flight for one user), so every request is a real login that writes the user's new state. %s users imported with "+
		"`twofactor import` for it (each gives two logins in its first 30-s step and one per step after, with the default skew of 1), "+
		"the import's dirty pages written out (sync, and a PostgreSQL CHECKPOINT) before the host starts. "+
		"The **bare baseline** (`bench/bare`) is net/http + pquerna/otp with the secrets in memory and no replay check, driven by the same "+
		"generator with the same JSON: the ceiling of this machine for \"HTTP + TOTP check\". Wrong codes go to %s other users, at most 4 "+
		"each, under the attempt gate's 5 (no 429s; the 429 path is not measured); replays are the freshest-code load of %s other users "+
		"(the first use of each step an allow, the rest replays). %v measured per level after %v of warm-up. CPU per request: from "+
		"/proc/PID/stat over the level, warm-up included; server = host + plugin processes; their threads' context switches per request "+
		"from /proc/PID/task/*/status, counted the same way.\n\n",
		fmtInt(o.loginUsers), fmtInt(o.wrongUsers), fmtInt(o.replayUsers), o.duration, o.warmup)
	r.printf("| server | workload | c | req/s | ÷ bare at c | p50 | p90 | p99 | server CPU/req | server switches/req | generator CPU/req | outcomes | errors |\n")
	r.printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, row := range r.logins {
		ratio := "–"
		if b, ok := r.bareAt(row.x.Concurrency); ok && b.x.RPS > 0 {
			ratio = fmtRatio(row.x.RPS/b.x.RPS, 3)
		}
		r.printf("| %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.server, row.workload, row.x.Concurrency, row.x.RPS, ratio,
			fmtDur(row.x.P50), fmtDur(row.x.P90), fmtDur(row.x.P99), fmtDur(row.serverCPU()), row.serverSwitches(), fmtDur(row.perRequest(row.cpu.load)),
			fmtCounts(row.x.Outcomes), fmtCounts(row.x.Errors))
	}
	r.printf("\n")
	for _, s := range r.loginSkipped {
		r.printf("- %s\n", s)
	}
	if o.cpuprofile != "" {
		r.printf("- The SQLite host's CPU profile (its whole life: all its workloads above) is in `%s`, and its TOTP plugin's in "+
			"`%s-twofactor-provider-totp-PID.prof`; read one with `go tool pprof -top FILE` "+
			"(a Go profile carries its symbols, so the deleted binary is not needed).\n", o.cpuprofile, o.cpuprofile)
	}
	r.printf("\n")
}
