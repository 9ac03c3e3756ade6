package host_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// httpBurst sends n requests at once, request i to hosts[i%len(hosts)],
// and counts the answers by verdictOf. It also checks that every 429
// carries a Retry-After of at least a second.
func httpBurst(t *testing.T, hosts []*testHost, n int, send func(h *testHost, i int) response) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, r := range burst.Run(n, func(i int) response { return send(hosts[i%len(hosts)], i) }) {
		counts[verdictOf(r)]++
		if r.status == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q", r.header.Get("Retry-After"))
			}
		}
	}
	return counts
}

var free = framework.DefaultLockoutPolicy.FreeAttempts

// TestGateBurstOneHost (issue 13, acceptance 1): 200 simultaneous wrong
// codes to one host: at most free_attempts evaluated, the rest 429; the
// right code right after: 429.
func TestGateBurstOneHost(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	right := h.code(secret)
	wrong := wrongTOTP(t, secret, h.clock.Now())
	got := httpBurst(t, []*testHost{h}, 200, func(h *testHost, _ int) response { return h.verify("alice", wrong) })
	if got["deny/invalid_code"] > free+1 || got["deny/invalid_code"]+got["429"] != 200 {
		t.Fatalf("200 wrong codes at once: %v; want at most %d evaluated, the rest 429", got, free+1)
	}
	if v := h.verify("alice", right); v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" {
		t.Errorf("the right code after the burst: %d %v, want 429 locked_out", v.status, v.body)
	}
}

// TestGateBurstReplicas: the same burst split over two replicas sharing
// one PostgreSQL.
func TestGateBurstReplicas(t *testing.T) {
	config := postgresConfig(t, totpClients)
	a, b := startReplica(t, config), startReplica(t, config)
	secret := enrollTOTPOn(t, a, "alice")
	wrong := wrongTOTP(t, secret, time.Now())
	got := httpBurst(t, []*testHost{a, b}, 200, func(h *testHost, _ int) response { return h.verify("alice", wrong) })
	if got["deny/invalid_code"] > free+1 || got["deny/invalid_code"]+got["429"] != 200 {
		t.Fatalf("200 wrong codes over two replicas: %v; want at most %d evaluated, the rest 429", got, free+1)
	}
	for _, h := range []*testHost{a, b} {
		if v := h.verify("alice", realCode(t, secret, 30*time.Second)); v.status != http.StatusTooManyRequests {
			t.Errorf("the right code after the burst: %d %v, want 429", v.status, v.body)
		}
	}
}

// TestRecoveryFloodThroughHost (acceptance 2): 300 simultaneous wrong
// recovery codes never lock the factor; the recovery codes themselves back
// off (small backoff here) and work again after it.
func TestRecoveryFloodThroughHost(t *testing.T) {
	h := startHost(t, totpClients+"lockout: {backoff: 2s, max_backoff: 4s}\n")
	secret := h.enroll("alice")
	codes := h.lastRecovery
	got := httpBurst(t, []*testHost{h}, 300, func(h *testHost, i int) response {
		return h.recover("alice", fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i))
	})
	if got["deny/invalid_code"] > free+1 || got["429"] == 0 {
		t.Fatalf("300 wrong recovery codes: %v", got)
	}
	// The factor was never touched: the valid code works now.
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Fatalf("valid TOTP code after a recovery flood: %d %v", v.status, v.body)
	}
	// Another flood, then wait out the recovery backoff (max_backoff):
	// a real recovery code works.
	httpBurst(t, []*testHost{h}, 300, func(h *testHost, i int) response {
		return h.recover("alice", fmt.Sprintf("AAAA-BBBB-DDDD-%04d", i))
	})
	if r := h.recover("alice", codes[0]); r.status != http.StatusTooManyRequests {
		t.Fatalf("recovery code during its backoff: %d %v", r.status, r.body)
	}
	h.clock.Add(4 * time.Second)
	if r := h.recover("alice", codes[0]); r.str("outcome") != "allow" {
		t.Fatalf("recovery code after max_backoff: %d %v", r.status, r.body)
	}
}

// TestConfirmBurstThroughHost (acceptance 3): 100 simultaneous wrong
// confirm codes: at most free_attempts evaluated.
func TestConfirmBurstThroughHost(t *testing.T) {
	h := startHost(t, totpClients)
	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	secret := otpSecret(t, r)
	wrong := wrongTOTP(t, secret, h.clock.Now())
	got := httpBurst(t, []*testHost{h}, 100, func(h *testHost, _ int) response {
		return h.do("POST", "/v1/users/alice/enrollments/totp/confirm", appKey, map[string]string{"code": wrong})
	})
	// A wrong confirmation code is 422 (the enrollment stays pending).
	if got["422"] > free+1 || got["422"]+got["429"] != 100 {
		t.Fatalf("100 wrong confirm codes: %v; want at most %d evaluated, the rest 429", got, free+1)
	}
}

// TestPushBombThroughHost (acceptance 4): 20 push verifies for one user at
// once, then more one after another, against the Duo emulator: at most
// lockout.max_pushes pushes reach it per window.
func TestPushBombThroughHost(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "secure"}, "carol")
	pushes := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Path == "/auth/v2/auth" && r.Params.Get("async") == "1" {
				n++
			}
		}
		return n
	}
	got := httpBurst(t, []*testHost{h}, 20, func(h *testHost, _ int) response {
		return h.duoVerify("carol", map[string]string{"factor": "push", "session": "attacker"})
	})
	if got["pending/waiting"] != 20 || pushes() != 1 {
		t.Fatalf("push bomb: %v, %d pushes reached Duo; want every answer pending and 1 push", got, pushes())
	}
	// From other logins (other sessions, or none) while it waits: refused,
	// nothing sent.
	if got := httpBurst(t, []*testHost{h}, 20, func(h *testHost, i int) response {
		return h.duoVerify("carol", map[string]string{"factor": "push", "session": fmt.Sprint("login-", i%3)})
	}); got["429"] != 20 || pushes() != 1 {
		t.Fatalf("push bomb of other logins: %v, %d pushes reached Duo; want 20 refused and 1 push", got, pushes())
	}
	// The user lets each push time out; the attacker asks again.
	for range 10 {
		emu.ScriptPush("carol", duotest.Push{Result: "timeout"})
		v := h.duoVerify("carol", map[string]string{"factor": "push", "session": "attacker"})
		if v.str("txid") != "" {
			h.poll("carol", v.str("txid"))
		}
	}
	if n := pushes(); n > framework.DefaultPushLimit.Max {
		t.Errorf("%d pushes reached Duo in one window, want at most %d", n, framework.DefaultPushLimit.Max)
	}
}

// TestFailClosedWhenFactorUnusable (acceptance 5): a user enrolled in TOTP
// is never let in without a factor when TOTP is disabled by a reload, when
// its plugin fails its pin, or when its binary is gone.
func TestFailClosedWhenFactorUnusable(t *testing.T) {
	notAllowed := func(t *testing.T, h *testHost) {
		t.Helper()
		r := h.challenge("alice", map[string]string{"audience": "client"})
		if r.status != http.StatusOK || r.str("decision") != "deny" || r.str("why") != "provider_unavailable" || r.body["recovery_available"] != true {
			t.Errorf("challenge: %d %v; want deny provider_unavailable with recovery_available", r.status, r.body)
		}
	}
	t.Run("disabled by reload", func(t *testing.T) {
		h := startHost(t, totpClients)
		h.enroll("alice")
		text, err := os.ReadFile(h.configPath)
		if err != nil {
			t.Fatal(err)
		}
		next := strings.Replace(string(text), "enabled: true", "enabled: false", 1)
		if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
			t.Fatal(err)
		}
		// Disabling a provider loosens the second factor: the watcher
		// refuses it, the admin's SIGHUP (Reload) applies it.
		if ev := waitReload(t, h.svc); ev.Applied {
			t.Fatal("the file watcher disabled TOTP by itself")
		}
		wantDecision(t, h.challenge("alice", map[string]string{"audience": "client"}), "verify", "enrolled")
		if err := h.svc.Reload(t.Context()); err != nil {
			t.Fatalf("reload: %v", err)
		}
		notAllowed(t, h)
	})
	t.Run("pin mismatch", func(t *testing.T) {
		h := startHost(t, totpClients)
		h.enroll("alice")
		h.stop()
		text, _ := os.ReadFile(h.configPath)
		pinned := strings.Replace(string(text), "    enabled: true\n", "    enabled: true\n    sha256: "+strings.Repeat("ab", 32)+"\n", 1)
		if err := os.WriteFile(h.configPath, []byte(pinned), 0o600); err != nil {
			t.Fatal(err)
		}
		notAllowed(t, serveConfig(t, h.configPath, h.pluginsDir, h.clock, hclog.NewNullLogger()))
	})
	t.Run("binary gone", func(t *testing.T) {
		h := startHost(t, totpClients)
		h.enroll("alice")
		if err := os.Remove(filepath.Join(h.pluginsDir, "twofactor-provider-totp")); err != nil {
			t.Fatal(err)
		}
		pids := testbin.Processes(h.pluginsDir)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			testbin.WaitExit(pid)
		}
		// A verify finds the plugin dead and cannot restart it.
		h.clock.Add(30 * time.Second)
		if v := h.verify("alice", "123456"); v.status != http.StatusServiceUnavailable {
			t.Errorf("verify with the plugin gone: %d %v", v.status, v.body)
		}
		notAllowed(t, h)
	})
}

// wrongTOTP is a well-formed code that matches no step near at.
func wrongTOTP(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for i := -3; i <= 3; i++ {
		c, err := totpCode(secret, at.Add(time.Duration(i)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		near[c] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", (123456+n*7919)%1000000); !near[c] {
			return c
		}
	}
}
