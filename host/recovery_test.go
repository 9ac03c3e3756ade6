package host_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

func (h *testHost) recover(user, code string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+user+"/verify", appKey, map[string]string{"provider": "recovery", "audience": "client", "code": code})
}

// TestRecoveryCodes: ten codes with the first factor, each works once,
// only hashes on disk, regeneration invalidates the old set, and they work
// with the TOTP plugin dead.
func TestRecoveryCodes(t *testing.T) {
	h := startHost(t, totpClients)
	h.enroll("alice")
	codes := h.lastRecovery
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(codes))
	}
	format := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !format.MatchString(c) || seen[c] {
			t.Fatalf("bad or repeated code %q", c)
		}
		seen[c] = true
	}
	if r := h.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 10.0 {
		t.Errorf("remaining: %v", r.body)
	}

	// The TOTP plugin dies and cannot come back (its binary is gone).
	bin := filepath.Join(h.pluginsDir, "twofactor-provider-totp")
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	for _, pid := range testbin.Processes(h.pluginsDir) {
		syscall.Kill(pid, syscall.SIGKILL)
		testbin.WaitExit(pid)
	}
	if v := h.verify("alice", "123456"); v.status != http.StatusServiceUnavailable {
		t.Fatalf("totp with its plugin gone: %d %v", v.status, v.body)
	}

	// Typed loosely: lower case, no dashes, spaces.
	loose := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	if v := h.recover("alice", loose); v.str("outcome") != "allow" {
		t.Fatalf("recovery code: %d %v", v.status, v.body)
	}
	if v := h.recover("alice", codes[0]); v.str("outcome") != "deny" || v.str("reason") != "invalid_code" {
		t.Errorf("recovery code reused: %d %v", v.status, v.body)
	}
	if v := h.recover("bob", codes[1]); v.str("outcome") != "deny" {
		t.Errorf("alice's code worked for bob: %v", v.body)
	}
	if r := h.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 9.0 {
		t.Errorf("remaining after use: %v", r.body)
	}

	// Regenerating (after a step-up: here one of the codes) invalidates
	// the old set.
	g := h.do("POST", "/v1/users/alice/recovery-codes", appKey, map[string]any{"audience": "client",
		"step_up": map[string]string{"provider": "recovery", "code": codes[2]}})
	if g.status != http.StatusCreated || len(g.body["recovery_codes"].([]any)) != 10 {
		t.Fatalf("regenerate: %d %v", g.status, g.body)
	}
	if v := h.recover("alice", codes[1]); v.str("outcome") != "deny" {
		t.Errorf("an old code survived regeneration: %v", v.body)
	}
	fresh := g.body["recovery_codes"].([]any)[0].(string)
	if v := h.recover("alice", fresh); v.str("outcome") != "allow" {
		t.Errorf("a new code: %v", v.body)
	}
	if g := h.do("POST", "/v1/users/nobody/recovery-codes", appKey, map[string]any{"audience": "client",
		"step_up": map[string]string{"provider": "recovery", "code": fresh}}); g.status != http.StatusNotFound || g.errCode() != "not_enrolled" {
		t.Errorf("codes for a user with no factor: %d %v", g.status, g.body)
	}

	// Only hashes on disk: no code, in any spelling, in any database file.
	dir := filepath.Dir(h.svc.Config.StorageDSN)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		for _, c := range append(codes, fresh) {
			if strings.Contains(string(b), c) || strings.Contains(string(b), strings.ReplaceAll(c, "-", "")) {
				t.Errorf("%s contains recovery code %s", f.Name(), c)
			}
		}
	}
}

// TestRecoveryCodeEndsLockout: once the attempt budget is spent, a
// recovery code still gets the user in, and the run is reset.
func TestRecoveryCodeEndsLockout(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	codes := h.lastRecovery
	h.clock.Add(30 * time.Second)
	for range 5 {
		h.verify("alice", "000000")
	}
	if v := h.verify("alice", h.code(secret)); v.status != http.StatusTooManyRequests {
		t.Fatalf("not locked: %d", v.status)
	}
	if v := h.recover("alice", codes[2]); v.str("outcome") != "allow" {
		t.Fatalf("recovery while locked: %d %v", v.status, v.body)
	}
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Errorf("still locked after a recovery code: %d %v", v.status, v.body)
	}
}
