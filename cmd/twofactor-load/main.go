// Command twofactor-load is a load generator for the twofactor HTTP API.
//
// It enrolls its own users through the API (begin and confirm a TOTP
// enrollment, computing the codes from the otpauth URL the host shows),
// then, for each concurrency level, runs that many workers sending
// POST /v1/users/{user}/verify back to back, round robin over the users,
// and reports throughput, p50/p90/p99 latency, the outcome mix and errors
// by kind, as a Markdown table or (-json) as JSON.
//
//	twofactor-load -url http://127.0.0.1:8740 -app-key KEY -users 1000 \
//	    -concurrency 1,8,32 -duration 10s
//
// The workload is what replay protection allows: a user's code is
// accepted at most once per 30 s step, and only for a step newer than the
// last one accepted. Each request carries the user's freshest valid code
// (the step of now plus -lead): the first use of a step is an allow, the
// later ones are replays. Both run the whole verify path (attempt budget
// read, enrollment read, unseal, plugin call, audit write); an allow adds
// the compare-and-swap write of the new state and the attempt reset. The
// generator checks every allow: a step allowed twice is a double accept,
// reported in its own column, which must be 0.
//
// That is -mode freshest, the default. -mode first-use sends only first
// uses of valid codes (every request a login that writes the user's
// state) and -mode wrong only wrong codes, a few per user; modes.go says
// how, and how many users each needs.
//
// It never sends a wrong code unless -wrong-ratio is set: wrong codes
// spend the attempt budget and lock users out (HTTP 429). With -admin-key
// it checks the provider first and removes its users' enrollments at the
// end (unless -keep).
//
// With -users-file it enrolls nobody: it verifies users that `twofactor
// import` brought in from those files (CSV or JSON Lines of
// user,secret[,digits,period,algorithm]), -users of them picked at random
// across all the files, and leaves them enrolled.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// intList is a repeatable flag of comma-separated integers: "-concurrency
// 1,8 -concurrency 32" is 1, 8, 32.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

type options struct {
	url, appKey, adminKey string
	users                 int
	usersFiles            string
	concurrency           intList
	duration, warmup      time.Duration
	timeout               time.Duration
	audience, provider    string
	prefix                string
	setupConcurrency      int
	lead                  int64
	wrongRatio            float64
	mode                  string
	wrongPerUser          int
	jsonOut, keep         bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "twofactor-load:", err)
		}
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("twofactor-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8740", "base URL of the twofactor HTTP API")
	fs.StringVar(&o.appKey, "app-key", os.Getenv("APP_KEY"), "API key of scope app (default $APP_KEY)")
	fs.StringVar(&o.adminKey, "admin-key", os.Getenv("ADMIN_KEY"), "optional admin API key: check the provider first, remove the users after (default $ADMIN_KEY)")
	fs.IntVar(&o.users, "users", 100, "users to enroll and verify, round robin (with -users-file: how many of the file's users, picked at random)")
	fs.StringVar(&o.usersFiles, "users-file", "", "comma-separated files `twofactor import` read: verify those (imported) users instead of enrolling new ones")
	fs.Var(&o.concurrency, "concurrency", "concurrent workers, a comma-separated list, repeatable (default 1,8,32)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per concurrency level")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each level")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.StringVar(&o.audience, "audience", "client", "audience: client or staff")
	fs.StringVar(&o.provider, "provider", "totp", "provider (only totp: the generator computes its codes)")
	fs.StringVar(&o.prefix, "user-prefix", "", "prefix of the user ids (default load-RANDOM-)")
	fs.IntVar(&o.setupConcurrency, "setup-concurrency", 8, "parallel enrollments during setup")
	fs.Int64Var(&o.lead, "lead", 1, "send the code of the current step plus this many (at most the provider's skew setting)")
	fs.Float64Var(&o.wrongRatio, "wrong-ratio", 0, "fraction of requests sent with a wrong code (these lock users out)")
	fs.StringVar(&o.mode, "mode", modeFreshest, "workload: freshest (each user's freshest code: first use allowed, then replays), first-use (only first uses of valid codes: every request a login), wrong (only wrong codes, at most -wrong-per-user a user)")
	fs.IntVar(&o.wrongPerUser, "wrong-per-user", 4, "-mode wrong: wrong codes sent to one user at most (keep it under the attempt gate's 5)")
	fs.BoolVar(&o.jsonOut, "json", false, "print JSON instead of a Markdown table")
	fs.BoolVar(&o.keep, "keep", false, "with -admin-key: keep the users' enrollments at the end")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.appKey == "":
		return nil, errors.New("-app-key is required")
	case o.provider != "totp":
		return nil, fmt.Errorf("-provider %q: only totp is supported (the generator computes TOTP codes)", o.provider)
	case o.users < 1:
		return nil, errors.New("-users must be at least 1")
	case o.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case o.wrongRatio < 0 || o.wrongRatio > 1:
		return nil, errors.New("-wrong-ratio must be between 0 and 1")
	case o.lead < 0:
		return nil, errors.New("-lead must not be negative")
	case o.mode != modeFreshest && o.mode != modeFirstUse && o.mode != modeWrong:
		return nil, fmt.Errorf("-mode %q: want %s, %s or %s", o.mode, modeFreshest, modeFirstUse, modeWrong)
	case o.mode != modeFreshest && o.wrongRatio > 0:
		return nil, fmt.Errorf("-wrong-ratio is for -mode %s only", modeFreshest)
	case o.wrongPerUser < 1:
		return nil, errors.New("-wrong-per-user must be at least 1")
	case o.setupConcurrency < 1:
		return nil, errors.New("-setup-concurrency must be at least 1")
	}
	if len(o.concurrency) == 0 {
		o.concurrency = intList{1, 8, 32}
	}
	o.url = strings.TrimRight(o.url, "/")
	if o.prefix == "" {
		b := make([]byte, 4)
		rand.Read(b)
		o.prefix = "load-" + hex.EncodeToString(b) + "-"
	}
	return o, nil
}

// report is what -json prints.
type report struct {
	URL           string  `json:"url"`
	Provider      string  `json:"provider"`
	Audience      string  `json:"audience"`
	Users         int     `json:"users"`
	EnrollSeconds float64 `json:"enroll_seconds"`
	// Population is how many users the -users-file files hold; Users of
	// them were picked.
	Population int      `json:"population,omitempty"`
	Results    []Result `json:"results"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	maxC := 0
	for _, c := range o.concurrency {
		maxC = max(maxC, c)
	}
	g := newGenerator(o, max(maxC, o.setupConcurrency))
	if o.adminKey != "" {
		if err := g.checkProvider(ctx); err != nil {
			return err
		}
	}
	began := time.Now()
	population := 0
	if o.usersFiles != "" {
		if g.users, population, err = loadUsers(strings.Split(o.usersFiles, ","), o.users, uint64(began.UnixNano())); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "loaded %d of the %d imported users in %v\n", len(g.users), population, time.Since(began).Round(time.Millisecond))
	} else {
		if err := g.enrollAll(ctx); err != nil {
			return err
		}
		d := time.Since(began)
		fmt.Fprintf(stderr, "enrolled %d users in %v (%.0f/s)\n", o.users, d.Round(time.Millisecond), float64(o.users)/d.Seconds())
	}
	enrollTime := time.Since(began)
	if o.adminKey != "" && !o.keep && o.usersFiles == "" {
		defer func() {
			// A fresh context: an interrupted run still cleans up.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := g.removeAll(cctx); err != nil {
				fmt.Fprintln(stderr, "twofactor-load: cleanup:", err)
			}
		}()
	}
	rep := report{URL: o.url, Provider: o.provider, Audience: o.audience, Users: len(g.users), Population: population}
	if o.usersFiles == "" {
		rep.EnrollSeconds = enrollTime.Seconds()
	}
	if !o.jsonOut {
		fmt.Fprintf(stdout, "verify load: %s, %d users, provider %s, audience %s, %v per level\n\n", o.url, len(g.users), o.provider, o.audience, o.duration)
		io.WriteString(stdout, tableHeader)
	}
	for _, c := range o.concurrency {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := g.runLevel(ctx, c)
		rep.Results = append(rep.Results, r)
		if !o.jsonOut {
			io.WriteString(stdout, markdownRow(r))
		} else {
			fmt.Fprintf(stderr, "c=%d: %.0f req/s, p50 %s, p99 %s\n", c, r.RPS, fmtDur(r.P50), fmtDur(r.P99))
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	for _, r := range rep.Results {
		if r.DoubleAccepts > 0 {
			return fmt.Errorf("c=%d: %d codes were accepted twice", r.Concurrency, r.DoubleAccepts)
		}
	}
	return nil
}

// httpStatusError is a non-2xx answer, with the API's error code.
type httpStatusError struct {
	status int
	code   string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.code) }

// kind names the error for the errors column: "http 503
// provider_unavailable", "transport timeout", ….
func errorKind(err error) string {
	var he *httpStatusError
	if errors.As(err, &he) {
		if he.code == "" {
			return fmt.Sprintf("http %d", he.status)
		}
		return fmt.Sprintf("http %d %s", he.status, he.code)
	}
	if errors.Is(err, errOutOfFresh) || errors.Is(err, errOutOfWrong) {
		return err.Error()
	}
	msg := err.Error()
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "transport timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport connection refused"
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(msg, "connection reset"):
		return "transport connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(msg, "EOF"):
		return "transport EOF"
	case strings.Contains(msg, "decode answer"):
		return "bad answer"
	}
	return "transport other"
}
