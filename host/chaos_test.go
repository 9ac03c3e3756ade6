//go:build chaos

package host_test

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// TestChaos runs a steady verify load through the real host while the
// TOTP plugin is SIGKILLed again and again, then checks what must hold
// whatever crashes: no code accepted twice, no 500 (only 503
// provider_unavailable while a plugin restarts), no enrolled user lost,
// and no plugin process left after the host stops.
//
// make chaos runs it for a minute; CI runs the short form (CHAOS_ROUNDS).
// Not covered here yet: killing one of two PostgreSQL replicas, Duo
// timeouts and 500s (see the failmode and replica tests), and the
// throughput-recovery bound.
func TestChaos(t *testing.T) {
	rounds := 10
	if v := os.Getenv("CHAOS_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	h := startHost(t, totpClients)
	const users = 20
	secrets := map[string]string{}
	for i := range users {
		u := fmt.Sprintf("user%02d", i)
		secrets[u] = h.enroll(u)
	}
	type key struct {
		user string
		step int64
	}
	var (
		mu       sync.Mutex
		allowed  = map[key]int{}
		statuses = map[string]int{}
	)
	for round := range rounds {
		h.clock.Add(30 * time.Second) // a fresh step: every user has one new valid code
		step := h.clock.Now().Unix() / 30
		var wg sync.WaitGroup
		for u, s := range secrets {
			code := h.code(s)
			for range 3 { // each code sent three times at once: one may pass
				wg.Add(1)
				go func() {
					defer wg.Done()
					v := h.verify(u, code)
					mu.Lock()
					defer mu.Unlock()
					statuses[fmt.Sprintf("%d %s%s", v.status, v.str("outcome")+v.errCode(), "/"+v.str("reason"))]++
					if v.str("outcome") == "allow" {
						allowed[key{u, step}]++
					}
				}()
			}
		}
		// Kill the plugin in the middle of the round.
		if pids := testbin.Processes(h.pluginsDir); len(pids) > 0 {
			syscall.Kill(pids[0], syscall.SIGKILL)
		}
		wg.Wait()
		t.Logf("round %d: %v", round, statuses)
	}
	for k, n := range allowed {
		if n > 1 {
			t.Errorf("user %s step %d was allowed %d times", k.user, k.step, n)
		}
	}
	for s := range statuses {
		switch s {
		case "200 allow/", "200 deny/replayed", "503 provider_unavailable/":
		default:
			t.Errorf("unexpected answer %q (x%d)", s, statuses[s])
		}
	}
	if len(allowed) == 0 {
		t.Error("nothing was ever allowed: the load did not reach the provider")
	}
	// Nothing enrolled was lost: every user still verifies.
	h.clock.Add(30 * time.Second)
	for u, s := range secrets {
		if v := h.verify(u, h.code(s)); v.status != http.StatusOK || v.str("outcome") != "allow" {
			t.Errorf("%s after the chaos: %d %v", u, v.status, v.body)
		}
	}
	h.stop()
	if left := testbin.Processes(h.pluginsDir); len(left) != 0 {
		t.Errorf("plugin processes left after the host stopped: %v", left)
	}
}
