//go:build chaos

package host_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// chaosReplica is one `twofactor serve` process of a pair sharing a
// PostgreSQL database, with a plugins folder of its own so that its plugin
// processes can be told from the other replica's.
type chaosReplica struct {
	name, config, plugins string

	mu  sync.Mutex
	cmd *exec.Cmd
	url string
	up  bool
	gen int // incremented by each kill
}

func newChaosReplica(t *testing.T, name, dsn string) *chaosReplica {
	t.Helper()
	config, plugins := postgresConfigAt(t, dsn, totpClients)
	r := &chaosReplica{name: name, config: config, plugins: plugins}
	r.start(t)
	return r
}

// start runs the replica and returns once it serves (on a new port).
func (r *chaosReplica) start(t *testing.T) {
	t.Helper()
	cmd, url := startProcessWith(t, r.config)
	r.mu.Lock()
	r.cmd, r.url, r.up = cmd, url, true
	r.mu.Unlock()
}

// state is what a request needs to know: where the replica is, whether it
// is up, and its generation (to tell, after a transport error, whether the
// replica was killed since the request was sent).
func (r *chaosReplica) state() (url string, up bool, gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url, r.up, r.gen
}

// sigkill kills the replica outright, reaps it, and waits (at most 10 s,
// on pidfds) for its plugin processes to die of the parent-death signal.
func (r *chaosReplica) sigkill(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	r.up = false
	r.gen++
	cmd := r.cmd
	r.mu.Unlock()
	pids := testbin.Processes(r.plugins)
	if len(pids) != 1 {
		t.Errorf("replica %s: plugin processes before the kill: %v", r.name, pids)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	noOrphans(t, r.plugins, pids, "replica "+r.name+" SIGKILLed")
}

// TestChaosReplicas: two `twofactor serve` processes on one PostgreSQL
// under 100 verifies a second (each code sent to both replicas at once, and
// again while the step lasts); every round one replica is SIGKILLed, its
// plugin must die with it, and it is started again. A request the killed
// replica dropped is sent again to the other one, as a load balancer
// would. Every allow is checked against the TOTP step of the code: no
// step of a user is accepted twice across the replicas and the restarts.
func TestChaosReplicas(t *testing.T) {
	dsn := postgresDSN(t)
	rounds := chaosRounds(t)
	replicas := []*chaosReplica{newChaosReplica(t, "a", dsn), newChaosReplica(t, "b", dsn)}

	// Separate processes run on the real clock.
	var users []string
	secrets := map[string]string{}
	enroller := &testHost{t: t, url: replicas[0].url}
	for i := range 60 {
		u := fmt.Sprintf("user%02d", i)
		users = append(users, u)
		secrets[u] = enrollTOTPOn(t, enroller, u)
	}

	const workers = 8
	client := chaosClient(workers)
	answers, allowed := newTally(), newUsed()
	// verify sends a code to replica first, or to the other one if first
	// is down or is killed before it answers, and classifies the answer:
	// 1 if it counts as throughput.
	verify := func(first int, u string, step int64, code string) int {
		body := map[string]string{"provider": "totp", "audience": "client", "code": code}
		for try := range 2 {
			r := replicas[(first+try)%2]
			url, up, gen := r.state()
			if !up {
				continue // a load balancer sends nothing to a replica it knows is down
			}
			a, err := postVerify(client, url, u, body)
			if err != nil {
				if _, _, now := r.state(); now != gen {
					answers.add("no answer from a replica being killed")
					allowed.lost(u)
					continue // killed while the request was in flight: send it to the other
				}
				answers.fail("%s: no answer from replica %s, which was not killed: %v", u, r.name, err)
				return 0
			}
			answers.add(a.String())
			switch a.String() {
			case "200 allow/":
				if c := allowed.allow(u, step); c > 1 {
					answers.fail("%s: step %d accepted %d times (last by replica %s)", u, step, c, r.name)
				}
				return 1
			case "200 deny/replayed":
				return 1
			case "503 provider_unavailable/":
				return 0
			}
			answers.fail("%s: unexpected answer %s from replica %s", u, a, r.name)
			return 0
		}
		answers.fail("%s: no replica answered", u)
		return 0
	}
	var n atomic.Int64
	l := startLoad("a+b", 50, workers, func() int {
		u := users[n.Add(1)%int64(len(users))]
		// The next step's code, inside the skew window: the current one
		// was used by the confirmation.
		at := time.Now().Add(30 * time.Second)
		code, err := totpCode(secrets[u], at)
		if err != nil {
			answers.fail("code: %v", err)
			return 0
		}
		// The same code to both replicas at once: at most one may pass.
		return concurrently(2, func(i int) int { return verify(i, u, at.Unix()/30, code) })
	})

	var recoveries []recovery
	for round := range rounds {
		r := replicas[round%2]
		name := fmt.Sprintf("round %d: SIGKILL and restart replica %s", round, r.name)
		recoveries = append(recoveries, chaosRound(t, name, []*load{l}, func() time.Time {
			at := time.Now()
			r.sigkill(t)
			killed := time.Now()
			r.start(t)
			t.Logf("%s: killed and its plugin gone in %v, serving again %v later",
				name, killed.Sub(at).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
			return at // recovery counts from the kill: the restart is part of the fault
		})...)
	}
	l.Stop()
	t.Logf("%d pairs of requests, %d sent late", l.sent, l.late)
	answers.report(t, "replicas")
	logRecoveries(t, recoveries)
	t.Logf("%d allows, none twice", allowed.check(t, users))

	// No enrollment lost: both replicas still see every user's TOTP.
	for _, r := range replicas {
		h := &testHost{t: t, url: r.url}
		for _, u := range users {
			e := h.do("GET", "/v1/users/"+u+"/enrollments", appKey, nil)
			list, _ := e.body["enrollments"].([]any)
			if e.status != http.StatusOK || len(list) != 1 || str(list[0].(map[string]any)["status"]) != "active" {
				t.Errorf("replica %s, %s after the chaos: %d %v", r.name, u, e.status, e.body)
			}
		}
	}
	// Both hosts SIGKILLed at the end too: no plugin outlives them.
	for _, r := range replicas {
		r.sigkill(t)
	}
}
