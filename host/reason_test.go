package host_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// startRuleBreaker runs a host with one provider, a real plugin process
// built from testdata/reasonplugin, which answers reasons outside the
// SDK's rule when asked to by the code typed.
func startRuleBreaker(t *testing.T, log *syncbuf.Buffer) *testHost {
	t.Helper()
	return startHostIn(t, ruleBreakerPlugins(t), ruleBreakerProviders,
		hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Warn}))
}

const ruleBreakerProviders = "providers:\n  rulebreaker: {enabled: true, clients: true}\n"

// ruleBreakerPlugins builds testdata/reasonplugin into a plugins folder of
// its own.
func ruleBreakerPlugins(t *testing.T, ldflags ...string) string {
	t.Helper()
	plugins := t.TempDir()
	args := []string{"build", "-o", filepath.Join(plugins, "twofactor-provider-rulebreaker")}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	build := exec.Command("go", append(args, "./testdata/reasonplugin")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	chmodGoW(t, plugins)
	return plugins
}

func (h *testHost) enrollRuleBreaker(user string) {
	h.t.Helper()
	r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "rulebreaker", "audience": "client"})
	if r.status != http.StatusCreated || r.str("status") != "active" {
		h.t.Fatalf("enroll %s: %d %v", user, r.status, r.body)
	}
}

func (h *testHost) verifyRuleBreaker(user, code string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+user+"/verify", appKey, map[string]string{"provider": "rulebreaker", "audience": "client", "code": code})
}

// TestReasonRuleHeldOnARealPlugin: a plugin's reason in the SDK's
// vocabulary or a well-formed custom one ("x-...") passes through; any
// other (a word of its own, a reason only the host gives, text) becomes a
// deny with invalid_reason, even on an allow, and the log and the audit
// name the provider and show the reason it sent only when it is a word.
func TestReasonRuleHeldOnARealPlugin(t *testing.T) {
	var log syncbuf.Buffer
	h := startRuleBreaker(t, &log)
	tests := []struct {
		user, code     string
		reason         string
		providerReason string // the audit's provider_reason; "" when none
	}{
		{"ann", "222222", "invalid_code", ""},
		{"ben", "333333", "x-card-blocked", ""},
		{"cat", "444444", "invalid_reason", "wrong_code"},
		{"dan", "555555", "invalid_reason", "not_enrolled"},
		{"eve", "666666", "invalid_reason", "3 bytes, not shown"},
		{"fay", "777777", "invalid_reason", "19 bytes, not shown"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			h.enrollRuleBreaker(tc.user)
			v := h.verifyRuleBreaker(tc.user, tc.code)
			if v.status != http.StatusOK || v.str("outcome") != "deny" || v.str("reason") != tc.reason {
				t.Fatalf("verify %s: %d %v; want deny %s", tc.code, v.status, v.body, tc.reason)
			}
			a := h.do("GET", "/v1/audit?user="+tc.user, adminKey, nil)
			var found bool
			for _, e := range a.body["entries"].([]any) {
				m := e.(map[string]any)
				if m["event"] != "verify" {
					continue
				}
				found = true
				details, _ := m["details"].(map[string]any)
				if m["provider"] != "rulebreaker" || m["reason"] != tc.reason || str(details["provider_reason"]) != tc.providerReason {
					t.Errorf("audit entry %v; want provider rulebreaker, reason %s, provider_reason %q", m, tc.reason, tc.providerReason)
				}
			}
			if !found {
				t.Errorf("no verify in the audit log: %v", a.body)
			}
		})
	}
	logs := log.String()
	if n := strings.Count(logs, "provider broke the reason rule"); n != 4 || !strings.Contains(logs, "rulebreaker") {
		t.Errorf("the log names %d rule breaks, want 4 naming the provider:\n%s", n, logs)
	}
	if strings.Contains(logs, "123456") {
		t.Errorf("the log shows text a provider put in a reason:\n%s", logs)
	}
	if v := h.verifyRuleBreaker("ann", "111111"); v.str("outcome") != "allow" {
		t.Errorf("a reason-free allow: %d %v", v.status, v.body)
	}
}

// TestReasonRuleCountsAgainstTheBudget: a burst of answers the host does
// not trust to be harmless (a host-only reason a provider should not
// give, which would otherwise be refunded, and a custom reason) spends the
// user's attempts: afterwards even the right code is refused as locked
// out.
func TestReasonRuleCountsAgainstTheBudget(t *testing.T) {
	var log syncbuf.Buffer
	h := startRuleBreaker(t, &log)
	for _, tc := range []struct{ user, code string }{{"gus", "555555"}, {"hal", "333333"}} {
		t.Run(tc.code, func(t *testing.T) {
			h.enrollRuleBreaker(tc.user)
			var wg sync.WaitGroup
			statuses := make(chan int, 12)
			for range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- h.verifyRuleBreaker(tc.user, tc.code).status
				}()
			}
			wg.Wait()
			close(statuses)
			counted := 0
			for s := range statuses {
				if s == http.StatusOK {
					counted++
				}
			}
			// Five free attempts (the default lockout policy), then backoff.
			if counted > 5 {
				t.Errorf("%d of 12 simultaneous verifies were evaluated; the budget allows 5", counted)
			}
			if v := h.verifyRuleBreaker(tc.user, "111111"); v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" {
				t.Errorf("the right code after the burst: %d %v; want 429 locked_out", v.status, v.body)
			}
		})
	}
}

// TestUndeclaredFactorRefused: a verify naming a factor the TOTP plugin
// does not declare (protocol 2, Capabilities.Factors) is a 400 that
// spends nothing: the right code still allows at once.
func TestUndeclaredFactorRefused(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second) // the confirmation code is spent
	for range 6 {                 // more than the free attempts
		v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "totp", "audience": "client",
			"factor": "push", "code": h.code(secret)})
		if v.status != http.StatusBadRequest || v.errCode() != "invalid_request" || !strings.Contains(v.body["error"].(map[string]any)["message"].(string), `factor "push"`) {
			t.Fatalf("verify with an undeclared factor: %d %v; want 400 invalid_request naming it", v.status, v.body)
		}
	}
	if v := h.verify("alice", h.code(secret)); v.status != http.StatusOK || v.str("outcome") != "allow" {
		t.Errorf("the right code after refused factors: %d %v", v.status, v.body)
	}
}
