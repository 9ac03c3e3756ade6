//go:build chaos

package host_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/testbin"
)

// The chaos tests (build tag chaos) run a steady verify load while
// something breaks, again and again, and check what must hold whatever
// crashes:
//
//   - TestChaosPluginKill: the TOTP plugin of an in-process host is
//     SIGKILLed every round;
//   - TestChaosPluginHang: the TOTP plugin is SIGSTOPped every round (and
//     left stopped: the host must find it hung, kill and restart it);
//   - TestChaosReplicas (chaos_replicas_test.go): one of two `twofactor
//     serve` processes on one PostgreSQL is SIGKILLed and restarted every
//     round (needs TEST_POSTGRES_DSN);
//   - TestChaosDuo (chaos_duo_test.go): the Duo emulator answers 500s, then
//     times out, every other round, under hosts in failmode secure and safe;
//   - TestChaosHostKill, TestChaosHostKillReplicas (chaos_hostkill_test.go):
//     `twofactor serve` on SQLite, or one of two replicas on PostgreSQL, is
//     SIGKILLed mid-batch under a closed loop of first-use logins, and no
//     answered decision may be lost across the restart.
//
// The rules: no code accepted twice (every allow is checked against the
// TOTP step of the code sent); no 500 (only a typed 503
// provider_unavailable while a plugin restarts, provider_timeout while it
// hangs, and failmode-decided outcomes for Duo while Duo fails); every
// verify answered is audited; no enrolled user lost; throughput back
// within 10% of the steady state within 5 s of each fault
// (chaos_load_test.go); no plugin process left after the run, the host
// stopped or SIGKILLed.
//
// CHAOS_ROUNDS is the number of faults per test: make test runs 3 (the CI
// short form, under a minute in all), make chaos 20 (a minute or so per
// test).

// TestChaosPluginKill: 20 users, 100 verifies a second (each code sent
// twice at once, and again while the step lasts), the TOTP plugin
// SIGKILLed once per round.
func TestChaosPluginKill(t *testing.T) {
	c := startTOTPChaos(t, totpClients, 0)
	var recoveries []recovery
	for round := range chaosRounds(t) {
		recoveries = append(recoveries, chaosRound(t, fmt.Sprintf("round %d: SIGKILL the TOTP plugin", round), []*load{c.l}, func() time.Time {
			pid := testbin.OnlyProcess(t, c.h.pluginsDir)
			at := time.Now()
			syscall.Kill(pid, syscall.SIGKILL)
			return at
		})...)
	}
	c.finish(t, recoveries)
}

// hangTimeout is the TOTP call deadline of TestChaosPluginHang.
const hangTimeout = time.Second

// TestChaosPluginHang: the same load, the TOTP plugin (deadline 1 s)
// SIGSTOPped once per round. Every request answers within the deadline
// plus a second (503 provider_timeout while it hangs); /readyz is 503
// within 10 s; the stopped process is killed and a new one started; the
// fault ends at the restart, from which throughput must recover.
func TestChaosPluginHang(t *testing.T) {
	c := startTOTPChaos(t, fmt.Sprintf(`providers:
  totp:
    enabled: true
    clients: true
    timeout: %s
    settings: {issuer: ACME Billing}
`, hangTimeout), hangTimeout+time.Second)
	rounds := chaosRounds(t)
	var recoveries []recovery
	for round := range rounds {
		recoveries = append(recoveries, chaosRound(t, fmt.Sprintf("round %d: SIGSTOP the TOTP plugin", round), []*load{c.l}, func() time.Time {
			pid := testbin.OnlyProcess(t, c.h.pluginsDir)
			testbin.Stop(t, pid)
			stopped := time.Now()
			unready := pollUntil(t, 10*time.Second, "/readyz 503 with the plugin stopped", func() bool {
				return c.h.do("GET", "/readyz", "", nil).status == http.StatusServiceUnavailable
			})
			if err := waitGone([]int{pid}, 10*time.Second); err != nil {
				t.Fatalf("round %d: the stopped plugin was not killed: %v", round, err)
			}
			pollUntil(t, 10*time.Second, "a new plugin process", func() bool { return len(testbin.Processes(c.h.pluginsDir)) == 1 })
			restarted := time.Now()
			t.Logf("round %d: /readyz 503 after %v; killed and restarted %v after the SIGSTOP", round,
				unready.Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond))
			return restarted
		})...)
	}
	st := c.h.svc.Framework.Providers()[0]
	if st.Hangs != rounds {
		t.Errorf("hangs counted: %d, want %d (one per round)", st.Hangs, rounds)
	}
	c.finish(t, recoveries)
}

// totpChaos is the load of the plugin chaos tests: 20 enrolled users,
// 100 verifies a second, each code sent twice at once.
type totpChaos struct {
	h       *testHost
	users   []string
	secrets map[string]string
	l       *load
	answers *tally
	allowed *used
	// answered counts the verify answers the audit log must hold (every
	// decision, and every attempt the provider could not answer).
	answered atomic.Int64
	// slowest is the longest a verify took, in ns.
	slowest   atomic.Int64
	stopClock chan struct{}
	clockDone sync.WaitGroup
	mu        sync.Mutex
	stale     map[string]int // per user: codes that aged out of the skew window on the way
}

// startTOTPChaos starts a host on providers with the load running. With
// maxLatency set, a provider may also answer 503 provider_timeout, and
// every verify must answer within maxLatency.
func startTOTPChaos(t *testing.T, providers string, maxLatency time.Duration) *totpChaos {
	c := &totpChaos{h: startHost(t, providers), secrets: map[string]string{}, answers: newTally(), allowed: newUsed(),
		stopClock: make(chan struct{}), stale: map[string]int{}}
	for i := range 20 {
		u := fmt.Sprintf("user%02d", i)
		c.users = append(c.users, u)
		c.secrets[u] = c.h.enroll(u)
	}
	// The host's clock is injected: it moves one TOTP step every second of
	// real time, so every user keeps getting fresh codes. The plugin's
	// restart backoff runs on the same clock; a restart is immediate
	// unless it fails.
	c.clockDone.Add(1)
	go func() {
		defer c.clockDone.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-c.stopClock:
				return
			case <-tick.C:
				c.h.clock.Add(30 * time.Second)
			}
		}
	}()
	const workers = 8
	client := chaosClient(workers)
	var n atomic.Int64
	c.l = startLoad("host", 50, workers, func() int {
		u := c.users[n.Add(1)%int64(len(c.users))]
		at := c.h.clock.Now()
		code, err := totpCode(c.secrets[u], at)
		if err != nil {
			c.answers.fail("code: %v", err)
			return 0
		}
		// The same code twice at once: at most one may pass.
		return concurrently(2, func(int) int { return c.verify(client, u, at.Unix()/30, code, maxLatency) })
	})
	return c
}

// verify sends one code and classifies the answer: 1 if it counts as
// throughput.
func (c *totpChaos) verify(client *http.Client, u string, step int64, code string, maxLatency time.Duration) int {
	start := time.Now()
	a, err := postVerify(client, c.h.url, u, map[string]string{"provider": "totp", "audience": "client", "code": code})
	took := time.Since(start)
	for s := c.slowest.Load(); int64(took) > s && !c.slowest.CompareAndSwap(s, int64(took)); s = c.slowest.Load() {
	}
	if err != nil {
		c.answers.fail("%s: no answer: %v", u, err)
		return 0
	}
	if maxLatency > 0 && took > maxLatency {
		// The client's clock: on a starved machine (see the load) the
		// host's queueing before and after the provider call counts too.
		c.answers.fail("%s: answered %s after %v, beyond %v (%s)", u, a, took.Round(time.Millisecond), maxLatency, machineLoad())
	}
	c.answers.add(a.String())
	switch a.status {
	case http.StatusOK, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		c.answered.Add(1)
	}
	switch a.String() {
	case "200 allow/":
		if k := c.allowed.allow(u, step); k > 1 {
			c.answers.fail("%s: step %d accepted %d times", u, step, k)
		}
		return 1
	case "200 deny/replayed":
		return 1
	case "503 provider_unavailable/":
		return 0
	case "503 provider_timeout/":
		if maxLatency > 0 {
			return 0
		}
	case "200 deny/invalid_code", "200 deny/clock_skew_suspected":
		// Only a code two steps old by the time it was checked (a
		// request slower than two clock ticks) may be refused.
		if c.h.clock.Now().Unix()/30-step >= 2 {
			c.mu.Lock()
			c.stale[u]++
			c.mu.Unlock()
			return 1
		}
	case "429 locked_out/":
		c.mu.Lock()
		s := c.stale[u]
		c.mu.Unlock()
		if s >= 5 { // the lockout's free attempts, all spent on stale codes
			return 0
		}
	}
	c.answers.fail("%s: unexpected answer %s", u, a)
	return 0
}

// finish stops the load and checks what must hold after the run.
func (c *totpChaos) finish(t *testing.T, recoveries []recovery) {
	t.Helper()
	c.l.Stop()
	close(c.stopClock)
	c.clockDone.Wait()
	c.mu.Lock()
	t.Logf("%d pairs of requests, %d sent late; slowest answer %v; stale codes per user: %v",
		c.l.sent, c.l.late, time.Duration(c.slowest.Load()).Round(time.Millisecond), c.stale)
	c.mu.Unlock()
	c.answers.report(t, "host")
	logRecoveries(t, recoveries)
	t.Logf("%d allows, none twice", c.allowed.check(t, c.users))
	if n, want := c.auditedVerifies(t), c.answered.Load(); n != want {
		t.Errorf("audited verifies: %d, verify answers: %d; every decision and every unanswered attempt must be audited", n, want)
	}

	// Nothing enrolled was lost: every user still verifies.
	c.h.clock.Add(30 * time.Second)
	for _, u := range c.users {
		if v := c.h.verify(u, c.h.code(c.secrets[u])); v.status != http.StatusOK || v.str("outcome") != "allow" {
			t.Errorf("%s after the chaos: %d %v", u, v.status, v.body)
		}
	}
	pids := testbin.Processes(c.h.pluginsDir)
	c.h.stop()
	noOrphans(t, c.h.pluginsDir, pids, "after the host stopped")
}

// auditedVerifies counts the verify entries of the audit log, page by
// page.
func (c *totpChaos) auditedVerifies(t *testing.T) int64 {
	t.Helper()
	var n, after int64
	for {
		page, err := c.h.svc.Framework.Audit(context.Background(), framework.AuditQuery{AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return n
		}
		for _, e := range page {
			if e.Event == framework.EventVerify {
				n++
			}
		}
		after = page[len(page)-1].ID
	}
}
