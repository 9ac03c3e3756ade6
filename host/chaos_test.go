//go:build chaos

package host_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// The chaos tests (build tag chaos) run a steady verify load while
// something breaks, again and again, and check what must hold whatever
// crashes:
//
//   - TestChaosPluginKill: the TOTP plugin of an in-process host is
//     SIGKILLed every round;
//   - TestChaosReplicas (chaos_replicas_test.go): one of two `twofactor
//     serve` processes on one PostgreSQL is SIGKILLed and restarted every
//     round (needs TEST_POSTGRES_DSN);
//   - TestChaosDuo (chaos_duo_test.go): the Duo emulator answers 500s, then
//     times out, every other round, under hosts in failmode secure and safe.
//
// The rules: no code accepted twice (every allow is checked against the
// TOTP step of the code sent); no 500 (only a typed 503
// provider_unavailable while a plugin restarts, and failmode-decided
// outcomes for Duo while Duo fails); no enrolled user lost; throughput
// back within 10% of the steady state within 5 s of each fault
// (chaos_load_test.go); no plugin process left after the run, the host
// SIGKILLed included.
//
// CHAOS_ROUNDS is the number of faults per test: make test runs 3 (the CI
// short form, under a minute in all), make chaos 20 (a minute or so per
// test).

// TestChaosPluginKill: 20 users, 100 verifies a second (each code sent
// twice at once, and again while the step lasts), the TOTP plugin
// SIGKILLed once per round.
func TestChaosPluginKill(t *testing.T) {
	rounds := chaosRounds(t)
	h := startHost(t, totpClients)
	var users []string
	secrets := map[string]string{}
	for i := range 20 {
		u := fmt.Sprintf("user%02d", i)
		users = append(users, u)
		secrets[u] = h.enroll(u)
	}

	// The host's clock is injected: it moves one TOTP step every second of
	// real time, so every user keeps getting fresh codes. The plugin's
	// restart backoff runs on the same clock; a restart is immediate
	// unless it fails.
	stopClock := make(chan struct{})
	var clockDone sync.WaitGroup
	clockDone.Add(1)
	go func() {
		defer clockDone.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopClock:
				return
			case <-tick.C:
				h.clock.Add(30 * time.Second)
			}
		}
	}()
	stepNow := func() int64 { return h.clock.Now().Unix() / 30 }

	const workers = 8
	client := chaosClient(workers)
	answers, allowed := newTally(), newUsed()
	var (
		n     atomic.Int64
		mu    sync.Mutex
		stale = map[string]int{} // per user: codes that aged out of the skew window on the way
	)
	// verify sends one code and classifies the answer: 1 if it counts as
	// throughput.
	verify := func(u string, step int64, code string) int {
		a, err := postVerify(client, h.url, u, map[string]string{"provider": "totp", "audience": "client", "code": code})
		if err != nil {
			answers.fail("%s: no answer: %v", u, err)
			return 0
		}
		answers.add(a.String())
		switch a.String() {
		case "200 allow/":
			if k := allowed.allow(u, step); k > 1 {
				answers.fail("%s: step %d accepted %d times", u, step, k)
			}
			return 1
		case "200 deny/replayed":
			return 1
		case "503 provider_unavailable/":
			return 0
		case "200 deny/invalid_code", "200 deny/clock_skew_suspected":
			// Only a code two steps old by the time it was checked (a
			// request slower than two clock ticks) may be refused.
			if stepNow()-step >= 2 {
				mu.Lock()
				stale[u]++
				mu.Unlock()
				return 1
			}
		case "429 locked_out/":
			mu.Lock()
			s := stale[u]
			mu.Unlock()
			if s >= 5 { // the lockout's free attempts, all spent on stale codes
				return 0
			}
		}
		answers.fail("%s: unexpected answer %s", u, a)
		return 0
	}
	l := startLoad("host", 50, workers, func() int {
		u := users[n.Add(1)%int64(len(users))]
		at := h.clock.Now()
		code, err := totpCode(secrets[u], at)
		if err != nil {
			answers.fail("code: %v", err)
			return 0
		}
		// The same code twice at once: at most one may pass.
		return concurrently(2, func(int) int { return verify(u, at.Unix()/30, code) })
	})

	var recoveries []recovery
	for round := range rounds {
		recoveries = append(recoveries, chaosRound(t, fmt.Sprintf("round %d: SIGKILL the TOTP plugin", round), []*load{l}, func() time.Time {
			pids := testbin.Processes(h.pluginsDir)
			if len(pids) != 1 {
				t.Errorf("round %d: TOTP plugin processes before the kill: %v", round, pids)
			}
			at := time.Now()
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return at
		})...)
	}
	l.Stop()
	close(stopClock)
	clockDone.Wait()
	t.Logf("%d pairs of requests, %d sent late; stale codes per user: %v", l.sent, l.late, stale)
	answers.report(t, "host")
	logRecoveries(t, recoveries)
	t.Logf("%d allows, none twice", allowed.check(t, users))

	// Nothing enrolled was lost: every user still verifies.
	h.clock.Add(30 * time.Second)
	for _, u := range users {
		if v := h.verify(u, h.code(secrets[u])); v.status != http.StatusOK || v.str("outcome") != "allow" {
			t.Errorf("%s after the chaos: %d %v", u, v.status, v.body)
		}
	}
	pids := testbin.Processes(h.pluginsDir)
	h.stop()
	noOrphans(t, h.pluginsDir, pids, "after the host stopped")
}
