package host_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// duoSettings is a providers.duo entry against emu (duoconfig.Entry), to
// append to a config's providers section.
func duoSettings(t *testing.T, emu *duotest.Server, o duoconfig.Options) string {
	t.Helper()
	entry, err := duoconfig.Entry(emu, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// duoHost runs the real host with the real Duo plugin against the
// emulator, for staff, in the given failmode.
func duoHost(t *testing.T, emu *duotest.Server, failmode string) *testHost {
	t.Helper()
	return startHost(t, "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: failmode}))
}

// enrolledDuoHost is the usual start of a test of Duo logins through the
// host: an emulator that knows the users, a host running Duo against it
// (o), and each user enrolled in Duo for staff.
func enrolledDuoHost(t *testing.T, o duoconfig.Options, users ...string) (*duotest.Server, *testHost) {
	t.Helper()
	emu := startEmulator(t)
	for _, u := range users {
		emu.AddUser(u)
	}
	h := startHost(t, "providers:\n"+duoSettings(t, emu, o))
	for _, u := range users {
		h.enrollDuo(emu, u, "staff")
	}
	return emu, h
}

// setupPasscode is the passcode the tests' Duo setups are confirmed
// with: one no test uses otherwise, valid once, added just before.
const setupPasscode = "8675309"

// enrollDuo enrolls a user Duo already knows (emu.AddUser) for audience:
// begin leaves it pending and asks for a passcode, and a passcode Duo
// accepts for the user (from the device Duo holds) activates it. It
// returns the confirmation's answer (recovery codes of a first factor).
func (h *testHost) enrollDuo(emu *duotest.Server, user, audience string) response {
	h.t.Helper()
	if r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "duo", "audience": audience}); r.status != http.StatusCreated || r.str("status") != "pending" {
		h.t.Fatalf("begin %s's Duo setup: %d %v", user, r.status, r.body)
	}
	emu.AddPasscode(user, setupPasscode)
	c := h.do("POST", "/v1/users/"+user+"/enrollments/duo/confirm", appKey, map[string]string{"code": setupPasscode})
	if c.status != http.StatusOK || c.str("status") != "active" {
		h.t.Fatalf("confirm %s's Duo setup with a passcode: %d %v", user, c.status, c.body)
	}
	return c
}

func startEmulator(t *testing.T) *duotest.Server {
	t.Helper()
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu
}

func (h *testHost) duoVerify(user string, body map[string]string) response {
	h.t.Helper()
	body["provider"], body["audience"] = "duo", "staff"
	return h.do("POST", "/v1/users/"+user+"/verify", appKey, body)
}

func (h *testHost) poll(user, txid string) response {
	h.t.Helper()
	return h.do("GET", "/v1/users/"+user+"/verifications/"+txid, appKey, nil)
}

// TestDuoThroughHost is the Duo walkthrough through the real host and
// the real twofactor-provider-duo process, against the emulator.
func TestDuoThroughHost(t *testing.T) {
	emu := startEmulator(t)
	_, skey := emu.Integration()
	h := duoHost(t, emu, "secure")

	p := h.do("GET", "/v1/providers", adminKey, nil).body["providers"].([]any)[0].(map[string]any)
	if p["health"] != "healthy" || !strings.Contains(toJSON(p["diagnostics"]), "clock_offset") {
		t.Errorf("duo provider status: %v", p)
	}
	if strings.Contains(toJSON(p), skey) {
		t.Fatal("the secret key is in the providers answer")
	}

	// Enroll a user Duo does not know: activation, waiting, success.
	r := h.do("POST", "/v1/users/carol/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"})
	d, _ := r.body["display"].(map[string]any)
	if r.status != http.StatusCreated || d["activation_code"] == nil || !strings.HasPrefix(str(d["barcode_url"]), "https://") {
		t.Fatalf("begin: %d %v", r.status, r.body)
	}
	if c := h.do("POST", "/v1/users/carol/enrollments/duo/confirm", appKey, map[string]string{}); c.status != http.StatusAccepted || c.str("reason") != "waiting" {
		t.Fatalf("confirm before activation: %d %v", c.status, c.body)
	}
	if err := emu.ActivateEnrollment(d["activation_code"].(string)); err != nil {
		t.Fatal(err)
	}
	if c := h.do("POST", "/v1/users/carol/enrollments/duo/confirm", appKey, map[string]string{}); c.status != http.StatusOK || c.str("status") != "active" {
		t.Fatalf("confirm after activation: %d %v", c.status, c.body)
	}

	// Passcode: allowed once.
	emu.AddPasscode("carol", "314159")
	if v := h.duoVerify("carol", map[string]string{"factor": "passcode", "code": "314159", "client_ip": "203.0.113.9"}); v.str("outcome") != "allow" {
		t.Fatalf("passcode: %d %v", v.status, v.body)
	}
	if v := h.duoVerify("carol", map[string]string{"factor": "passcode", "code": "314159"}); v.str("outcome") != "deny" {
		t.Errorf("passcode reused: %d %v", v.status, v.body)
	}
	ipSent := false
	for _, req := range emu.Requests() {
		ipSent = ipSent || (req.Path == "/auth/v2/auth" && req.Params.Get("ipaddr") == "203.0.113.9")
	}
	if !ipSent {
		t.Error("the client IP did not reach Duo")
	}

	// Pushes: pending, then the user's answer. Each in a push window of
	// its own (at most 3 pushes per 10 minutes by default).
	for _, tt := range []struct{ result, outcome, reason string }{
		{"allow", "allow", ""},
		{"deny", "deny", "denied_by_user"},
		{"timeout", "deny", "timeout"},
		{"fraud", "deny", "fraud"},
	} {
		t.Run("push "+tt.result, func(t *testing.T) {
			h.clock.Add(11 * time.Minute)
			emu.ScriptPush("carol", duotest.Push{Result: tt.result})
			v := h.duoVerify("carol", map[string]string{"factor": "push"})
			if v.str("outcome") != "pending" || v.str("txid") == "" {
				t.Fatalf("push: %d %v", v.status, v.body)
			}
			got := h.poll("carol", v.str("txid"))
			if got.body["unprompted"] != nil {
				t.Errorf("poll of an answered push says unprompted: %v", got.body)
			}
			if got.str("outcome") != tt.outcome || got.str("reason") != tt.reason {
				t.Errorf("poll: %d %v, want %s/%s", got.status, got.body, tt.outcome, tt.reason)
			}
			if again := h.poll("carol", v.str("txid")); again.status != http.StatusNotFound {
				t.Errorf("a decided push can be polled again: %d %v", again.status, again.body)
			}
		})
	}
	// A fraud report locks the user at once, for the longest backoff.
	if v := h.duoVerify("carol", map[string]string{"factor": "push"}); v.status != http.StatusTooManyRequests {
		t.Errorf("push after a fraud report: %d %v, want 429", v.status, v.body)
	}
	h.clock.Add(time.Hour + time.Minute)
	// A push is bound to its user.
	emu.ScriptPush("carol", duotest.Push{Result: "allow"})
	v := h.duoVerify("carol", map[string]string{"factor": "push"})
	if other := h.poll("mallory", v.str("txid")); other.status != http.StatusNotFound {
		t.Errorf("another user polled carol's push: %d %v", other.status, other.body)
	}

	// Neither the Duo secret key nor a passcode is anywhere in the
	// database files or the audit log.
	dir := filepath.Dir(h.svc.Config.StorageDSN)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), filepath.Base(h.svc.Config.StorageDSN)) {
			continue // the config file holds the key by design
		}
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		for _, secret := range []string{skey, "314159"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s contains %q", f.Name(), secret)
			}
		}
	}
	if audit := toJSON(h.do("GET", "/v1/audit?limit=1000", adminKey, nil).body); strings.Contains(audit, skey) || strings.Contains(audit, "314159") {
		t.Error("the audit log holds the Duo secret key or a passcode")
	}
}

// TestDuoClockDrift: Duo's clock 90 s ahead of this host's. Activation
// reports the offset; logins still work because requests are signed with
// Duo's time.
func TestDuoClockDrift(t *testing.T) {
	emu := startEmulator(t)
	emu.SetClockOffset(90 * time.Second)
	emu.AddUser("dave")
	h := duoHost(t, emu, "secure")
	p := h.do("GET", "/v1/providers", adminKey, nil).body["providers"].([]any)[0].(map[string]any)
	diag := toJSON(p["diagnostics"])
	if p["health"] != "degraded" || !strings.Contains(diag, "clock_offset") || !(strings.Contains(diag, `"value":"90s"`) || strings.Contains(diag, `"value":"89s"`) || strings.Contains(diag, `"value":"91s"`)) {
		t.Errorf("providers: %v", p)
	}
	r := h.enrollDuo(emu, "dave", "staff") // the passcode checked with a drifted clock too
	if codes, _ := r.body["recovery_codes"].([]any); len(codes) != 10 {
		t.Errorf("a first factor comes with 10 recovery codes, got %v", r.body["recovery_codes"])
	}
	emu.AddPasscode("dave", "271828")
	if v := h.duoVerify("dave", map[string]string{"factor": "passcode", "code": "271828"}); v.str("outcome") != "allow" {
		t.Errorf("passcode with a drifted clock: %d %v", v.status, v.body)
	}
}

// TestDuoFailmode: Duo unreachable in the ways it really fails; secure
// denies, safe allows and says so in the audit log; no verify outlasts
// the timeout (2 s) by more than a second.
func TestDuoFailmode(t *testing.T) {
	failures := []struct {
		name string
		f    duotest.Failure
	}{
		{"500", duotest.Failure{Path: "/auth/v2/auth", Status: 500}},
		{"429 beyond the deadline", duotest.Failure{Path: "/auth/v2/auth", Status: 429, RetryAfter: time.Minute}},
		{"slow", duotest.Failure{Path: "/auth/v2/auth", Delay: 10 * time.Second}},
	}
	for _, mode := range []string{"secure", "safe"} {
		t.Run(mode, func(t *testing.T) {
			emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: mode}, "erin")
			for _, tt := range failures {
				t.Run(tt.name, func(t *testing.T) {
					emu.Fail(1, tt.f)
					start := time.Now()
					v := h.duoVerify("erin", map[string]string{"factor": "passcode", "code": "123456"})
					if took := time.Since(start); took > 3*time.Second {
						t.Errorf("verify took %v with a 2s timeout", took)
					}
					want := map[string]string{"secure": "deny/unavailable", "safe": "allow/failmode_safe"}[mode]
					if got := v.str("outcome") + "/" + v.str("reason"); got != want {
						t.Errorf("%d %v, want %s", v.status, v.body, want)
					}
				})
			}
			emu.Close() // Duo gone entirely
			v := h.duoVerify("erin", map[string]string{"factor": "passcode", "code": "123456"})
			want := map[string]string{"secure": "deny", "safe": "allow"}[mode]
			if v.str("outcome") != want {
				t.Errorf("emulator down: %d %v", v.status, v.body)
			}
			audit := toJSON(h.do("GET", "/v1/audit?user=erin", adminKey, nil).body)
			if !strings.Contains(audit, `"event":"failmode"`) || !strings.Contains(audit, `"failmode":"`+mode+`"`) {
				t.Errorf("no failmode audit entry: %s", audit)
			}
		})
	}
}

// TestDuoBadCredentials: each classic mistake gets its own message, the
// host keeps running, and the secret key is never shown.
func TestDuoBadCredentials(t *testing.T) {
	emu := startEmulator(t)
	ikey, skey := emu.Integration()
	webIkey, webSkey := emu.AddWebSDKIntegration()
	wrongSkey := strings.Repeat("x", 40)
	tests := []struct {
		name, ikey, skey, want string
	}{
		{"wrong integration key", "DI" + strings.Repeat("A", 18), skey, "integration_key"},
		{"wrong secret key", ikey, wrongSkey, "secret_key"},
		{"web sdk keys", webIkey, webSkey, "Auth API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHost(t, "providers:\n"+duoSettings(t, emu, duoconfig.Options{IKey: tt.ikey, SKey: tt.skey, Failmode: "secure"}))
			p := h.do("GET", "/v1/providers", adminKey, nil)
			body := toJSON(p.body)
			if !strings.Contains(body, tt.want) || strings.Contains(body, tt.skey) {
				t.Errorf("providers: %s (want mention of %q, never the secret)", body, tt.want)
			}
			if r := h.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
				t.Error("host not running")
			}
		})
	}
}
