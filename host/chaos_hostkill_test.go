//go:build chaos

package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/testbin"
)

// TestChaosHostKill (issue 16's acceptance): `twofactor serve` on SQLite
// under a closed-loop load of first-use logins is SIGKILLed while decisions
// are being group-committed, restarted on the same store, and after every
// restart:
//
//	(a) every allow a client got an answer for has its audit entry, and
//	    its code is refused as a replay (every one, not a sample);
//	(b) no (user, TOTP step) was ever allowed twice, across all rounds;
//	(c) every wrong code a client got an answer for is counted in the
//	    user's attempt budget;
//	(d) no enrollment was lost.
//
// Why the kills land mid-batch: 64 clients in a closed loop keep about 63
// decisions waiting on the store while one batch commits, so the store's
// group commit always has a batch in progress and the next one queued; the
// kill is sent in the critical section that records the Nth answered
// allow, i.e. right after one batch's commit returned, while the clients'
// other decisions are in the next batch or queued for it. The test asserts
// that kills found requests in flight, and measures what became of them:
// the logins in flight at the kill, which no client heard about, are sent
// again after the restart. "replayed" says the batch they rode in had
// committed before the kill (the answer was lost, the decision was not);
// "allow" says it had not (nothing of it was written). Both are counted
// and logged, and the audit log must hold exactly the answered allows,
// the committed unanswered ones and the ones allowed when sent again.
func TestChaosHostKill(t *testing.T) {
	plugins := pluginCopy(t)
	cfg := writeConfig(t, plugins, hostKillProviders)
	runHostKill(t, cfg, []*killedHost{{name: "sqlite", config: cfg, plugins: plugins}})
}

// TestChaosHostKillReplicas is TestChaosHostKill on PostgreSQL with two
// `twofactor serve` replicas: the load goes to both, one of them is
// SIGKILLed each round, in turn, and restarted (needs TEST_POSTGRES_DSN).
func TestChaosHostKillReplicas(t *testing.T) {
	dsn := postgresDSN(t)
	var hosts []*killedHost
	for _, name := range []string{"a", "b"} {
		cfg, plugins := postgresConfigAt(t, dsn, hostKillProviders)
		hosts = append(hosts, &killedHost{name: name, config: cfg, plugins: plugins})
	}
	runHostKill(t, hosts[0].config, hosts)
}

// hostKillProviders: TOTP for clients, and budgets wide enough that the
// replays this test sends on purpose (after every restart, one per allow
// of the round) never lock a user out: a 429 would hide the answer the
// test checks. Guessers get at most maxGuesses wrong codes, below the free
// attempts, so each of theirs is answered invalid_code and counted.
const hostKillProviders = totpClients + "lockout: {free_attempts: 50, max_failures: 100}\n"

// killSchedule is when each round's kill lands: after this many answered
// allows in the round (round i uses killSchedule[i % len]). A fixed list,
// so the test is a function of the commit; uneven, so kills land early in
// a burst of logins as well as deep into a steady one.
var killSchedule = []int{150, 400, 90, 700, 250, 1000, 60, 500, 330, 820}

const (
	// killClients is the number of concurrent clients. Each sends its next
	// request as soon as it has the answer to the last (a closed loop), so
	// while the store commits one batch the other clients' decisions queue
	// behind it and form the next: batches are about as large as the
	// number of clients waiting on the store.
	killClients = 64
	// guessers are users who only ever get wrong codes (so nothing resets
	// their budget); maxGuesses bounds the wrong codes each one gets.
	guessers   = 128
	maxGuesses = 40
	// roundWithin bounds one round's wait for its kill.
	roundWithin = 90 * time.Second
)

// killedHost is one `twofactor serve` process of the test, restarted on
// the same config (and store) after each kill.
type killedHost struct {
	name, config, plugins string
	cmd                   *exec.Cmd
	url                   string
}

func (h *killedHost) start(t *testing.T) {
	t.Helper()
	h.cmd, h.url = startProcessWith(t, h.config)
}

// reap waits for the killed process and checks its plugin died with it.
func (h *killedHost) reap(t *testing.T, pids []int) {
	t.Helper()
	h.cmd.Wait()
	noOrphans(t, h.plugins, pids, "host "+h.name+" SIGKILLed")
}

func runHostKill(t *testing.T, cfgPath string, hosts []*killedHost) {
	rounds := chaosRounds(t)
	planned := 0
	for r := range rounds {
		planned += killSchedule[r%len(killSchedule)]
	}
	// One user per planned allow and a few per client: a user gives two
	// first-use logins per 30 s step (its codes for the current and the
	// next step), so the load never runs out of fresh codes.
	c := newKillChaos(t, hosts, planned+4*killClients)
	c.importUsers(t, cfgPath)
	cfg, err := config.Load(config.Source{File: cfgPath, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	// The test reads the store directly (the hosts' own view after a
	// restart): audit entries, attempt budgets, enrollments.
	st, err := host.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c.store = st
	for _, h := range hosts {
		h.start(t)
	}
	c.auditAfter = c.auditEnd(t)
	c.startClients()

	var totals killTotals
	for round := range rounds {
		victim := hosts[round%len(hosts)]
		target := killSchedule[round%len(killSchedule)]
		pids := testbin.Processes(victim.plugins)
		c.arm(victim, target)
		select {
		case <-c.killedCh:
		case <-time.After(roundWithin):
			c.stopClients()
			t.Fatalf("round %d: %d answered allows in %v, want %d (%s)", round, c.allowCount(), roundWithin, target, machineLoad())
		}
		victim.reap(t, pids)
		c.quiesce() // every request in flight has its answer or its transport error
		r := c.checkRound(t, round, victim)
		totals.add(r)
		t.Logf("round %d: SIGKILL host %s after %d allows: %s", round, victim.name, target, r)
	}
	c.stopClients()
	c.answers.report(t, "host kill")
	t.Logf("all rounds: %s; %s", totals, machineLoad())
	if totals.inFlight == 0 {
		t.Errorf("no kill landed with a decision in flight: the test did not kill mid-batch")
	}
	c.checkEnrollments(t)
	for _, h := range hosts {
		pids := testbin.Processes(h.plugins)
		h.cmd.Process.Signal(syscall.SIGKILL)
		h.reap(t, pids)
	}
}

// importUsers enrolls every user with `twofactor import`, each with a
// secret derived from its name (the same on every run).
func (c *killChaos) importUsers(t *testing.T, cfgPath string) {
	t.Helper()
	var b strings.Builder
	for _, u := range append(append([]string(nil), c.users...), c.guessers...) {
		sum := sha256.Sum256([]byte("chaos host kill " + u))
		secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
		c.secrets[u] = secret
		fmt.Fprintf(&b, "%s,%s\n", u, secret)
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runImport(t, "--config", cfgPath, file); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
}

// checkRound runs the checks of one kill, with the load paused: the
// killed host is restarted on its store; the budgets are read; the
// decisions in flight at the kill are resolved (sent again); the audit
// log is read; and every allow of the round is replayed.
func (c *killChaos) checkRound(t *testing.T, round int, victim *killedHost) roundResult {
	t.Helper()
	ctx := context.Background()
	var r roundResult
	c.mu.Lock()
	rd := c.round
	c.round = newRoundData()
	c.mu.Unlock()
	rd.unanswered = rd.unansweredLogins()
	r.allows, r.inFlight = len(rd.allowed), len(rd.unanswered)+rd.unansweredOther

	victim.start(t)

	// (c) Answered wrong codes are counted, cumulatively (nothing resets
	// a guesser's budget); unanswered ones may or may not be.
	for _, g := range c.guessers {
		a, err := c.store.Attempts(ctx, g, framework.BudgetFactor)
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		lo, hi := c.wrongAnswered[g], c.wrongAnswered[g]+c.wrongUnanswered[g]
		c.mu.Unlock()
		if a.Failures < lo || a.Failures > hi {
			t.Errorf("round %d: %s has %d failures counted after the restart, want %d answered wrong codes (up to %d with the unanswered)",
				round, g, a.Failures, lo, hi)
		}
	}

	// The decisions no client heard about: sent again, to the restarted
	// host. replayed: committed before the kill; allow: not written.
	committed, resolved := map[string]int{}, map[string]int{}
	var mu sync.Mutex
	concurrently(len(rd.unanswered), func(i int) int {
		k := rd.unanswered[i]
		a, err := postVerify(c.client, victim.url, k.user, map[string]string{"provider": "totp", "audience": "client", "code": k.code})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			t.Errorf("round %d: %s step %d sent again: no answer: %v", round, k.user, k.step, err)
		case a.String() == "200 deny/replayed":
			committed[k.user]++
			r.committedUnanswered++
		case (a.String() == "200 deny/clock_skew_suspected" || a.String() == "200 deny/invalid_code") && time.Now().Unix()/30-k.step >= 2:
			// Aged out of the skew window since (the checks took a step):
			// had it been committed, it would be a step at or before the
			// user's last, answered replayed. Not written, then.
			r.notCommitted++
		case a.String() == "200 allow/":
			if n := c.allowed.allow(k.user, k.step); n > 1 {
				t.Errorf("round %d: %s step %d accepted %d times", round, k.user, k.step, n)
			}
			rd.allowed = append(rd.allowed, k)
			resolved[k.user]++
			r.notCommitted++
		default:
			t.Errorf("round %d: %s step %d, in flight at the kill, sent again: %s", round, k.user, k.step, a)
		}
		return 0
	})

	// (a) The audit log holds exactly the answered allows, the committed
	// unanswered ones and those just resolved. It is read after the
	// resolution: on PostgreSQL a killed replica's COMMIT may still be
	// finishing in its server process after the kill, and the resolution's
	// compare-and-swap waits for it on the row lock, so only from then on
	// is the log final.
	audited := c.auditAllows(t)
	users := map[string]bool{}
	for u := range audited {
		users[u] = true
	}
	for u := range rd.allowsBy {
		users[u] = true
	}
	for u := range users {
		if want := rd.allowsBy[u] + committed[u] + resolved[u]; audited[u] != want {
			t.Errorf("round %d: %s has %d allows in the audit log, want %d (%d answered, %d committed but unanswered, %d allowed when sent again)",
				round, u, audited[u], want, rd.allowsBy[u], committed[u], resolved[u])
		}
	}
	// (a) Every allow of the round is refused as a replay now. The
	// resolved ones were just allowed by the restarted host itself.
	replays := concurrently(len(rd.allowed), func(i int) int {
		k := rd.allowed[i]
		h := c.hosts[i%len(c.hosts)]
		a, err := postVerify(c.client, h.url, k.user, map[string]string{"provider": "totp", "audience": "client", "code": k.code})
		if err != nil || a.String() != "200 deny/replayed" {
			c.answers.fail("round %d: %s step %d, allowed before the kill, replayed after the restart: %v %v", round, k.user, k.step, a, err)
			return 0
		}
		return 1
	})
	r.replaysRefused = replays
	c.auditAfter = c.auditEnd(t)
	return r
}

// auditAllows counts the verify allows per user audited since the last
// round's checks.
func (c *killChaos) auditAllows(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	c.pageAudit(t, func(e framework.AuditEntry) {
		if e.Event == framework.EventVerify && e.Outcome == "allow" {
			out[e.UserID]++
		}
	})
	return out
}

// auditEnd returns the id of the last audit entry.
func (c *killChaos) auditEnd(t *testing.T) int64 {
	t.Helper()
	c.pageAudit(t, func(framework.AuditEntry) {})
	return c.auditAfter
}

// pageAudit calls f on every audit entry after c.auditAfter, moving it on.
func (c *killChaos) pageAudit(t *testing.T, f func(framework.AuditEntry)) {
	t.Helper()
	for {
		page, err := c.store.ListAudit(context.Background(), framework.AuditQuery{AfterID: c.auditAfter, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return
		}
		for _, e := range page {
			f(e)
		}
		c.auditAfter = page[len(page)-1].ID
	}
}

// checkEnrollments (d): every user imported is still enrolled, active,
// and gets in with a fresh code through a host.
func (c *killChaos) checkEnrollments(t *testing.T) {
	t.Helper()
	all := append(append([]string(nil), c.users...), c.guessers...)
	for _, u := range all {
		list, err := c.store.List(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Provider != "totp" || list[0].Status != framework.StatusActive {
			t.Errorf("%s after the kills: enrollments %v", u, list)
		}
	}
	// And a guesser, whose step was never used, gets in through every host.
	for i, h := range c.hosts {
		g := c.guessers[i]
		code, err := totpCode(c.secrets[g], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		a, err := postVerify(c.client, h.url, g, map[string]string{"provider": "totp", "audience": "client", "code": code})
		if err != nil || a.String() != "200 allow/" {
			t.Errorf("%s through host %s after the kills: %v %v", g, h.name, a, err)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d enrollments intact", len(all))
}
