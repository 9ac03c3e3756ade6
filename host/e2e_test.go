package host_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// TestHTTPScenario is the walkthrough a host application goes through,
// against the real TOTP plugin process.
func TestHTTPScenario(t *testing.T) {
	h := startHost(t, totpClients)

	if r := h.do("GET", "/healthz", "", nil); r.status != 200 || r.str("status") != "ok" {
		t.Fatalf("healthz: %d %v", r.status, r.body)
	}
	if r := h.do("GET", "/readyz", "", nil); r.status != 200 || r.str("status") != "ready" {
		t.Fatalf("readyz: %d %v", r.status, r.body)
	}
	// Begin: the display carries the otpauth URL and a QR PNG, uncached.
	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	if r.status != http.StatusCreated || r.str("status") != "pending" || r.str("provider") != "totp" {
		t.Fatalf("begin: %d %v", r.status, r.body)
	}
	d := r.body["display"].(map[string]any)
	if !strings.HasPrefix(d["otpauth_url"].(string), "otpauth://totp/ACME%20Billing:alice?") || !strings.HasPrefix(d["qr_png_base64"].(string), "iVBORw0KGgo") {
		t.Errorf("display = %v", d)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("enrollment response may be cached")
	}
	// A wrong confirmation code is refused with the reason.
	if c := h.do("POST", "/v1/users/alice/enrollments/totp/confirm", appKey, map[string]string{"code": "000000"}); c.status != http.StatusUnprocessableEntity || c.errCode() != "invalid_code" {
		t.Errorf("wrong confirm: %d %v", c.status, c.body)
	}
	h.do("DELETE", "/v1/users/alice/enrollments/totp", adminKey, nil)
	secret := h.enroll("alice")

	// The confirmation code itself cannot be used to log in.
	if v := h.verify("alice", h.code(secret)); v.status != 200 || v.str("outcome") != "deny" || v.str("reason") != "replayed" {
		t.Errorf("confirm code reused: %d %v", v.status, v.body)
	}
	h.clock.Add(30 * time.Second)
	code := h.code(secret)
	if v := h.verify("alice", code); v.status != 200 || v.str("outcome") != "allow" {
		t.Fatalf("verify: %d %v", v.status, v.body)
	}
	if v := h.verify("alice", code); v.str("outcome") != "deny" || v.str("reason") != "replayed" {
		t.Errorf("replay: %d %v", v.status, v.body)
	}
	h.clock.Add(30 * time.Second)
	wrong := "000000"
	if h.code(secret) == wrong {
		wrong = "111111"
	}
	if v := h.verify("alice", wrong); v.str("outcome") != "deny" || v.str("reason") != "invalid_code" {
		t.Errorf("wrong code: %d %v", v.status, v.body)
	}
	if v := h.verify("bob", h.code(secret)); v.str("outcome") != "deny" || v.str("reason") != "not_enrolled" {
		t.Errorf("unenrolled: %d %v", v.status, v.body)
	}

	// Listing shows status, never secrets.
	l := h.do("GET", "/v1/users/alice/enrollments", appKey, nil)
	list := l.body["enrollments"].([]any)
	if l.status != 200 || len(list) != 1 || list[0].(map[string]any)["status"] != "active" {
		t.Errorf("list: %d %v", l.status, l.body)
	}
	if raw := toJSON(l.body); strings.Contains(raw, secret) || strings.Contains(raw, "state") {
		t.Errorf("list exposes state: %s", raw)
	}

	// Keys and scopes.
	if p := h.do("GET", "/v1/providers", appKey, nil); p.status != http.StatusForbidden || p.errCode() != "forbidden" {
		t.Errorf("app key on admin route: %d %v", p.status, p.body)
	}
	if p := h.doRaw("GET", "/v1/users/alice/enrollments", "", nil); p.status != http.StatusUnauthorized || p.errCode() != "unauthorized" {
		t.Errorf("no key: %d %v", p.status, p.body)
	}
	if p := h.do("GET", "/v1/users/alice/enrollments", appKey+"x", nil); p.status != http.StatusUnauthorized {
		t.Errorf("wrong key: %d %v", p.status, p.body)
	}
	p := h.do("GET", "/v1/providers", adminKey, nil)
	provs := p.body["providers"].([]any)
	if p.status != 200 || len(provs) != 1 || provs[0].(map[string]any)["health"] != "healthy" || provs[0].(map[string]any)["version"] == "" {
		t.Errorf("providers: %d %v", p.status, p.body)
	}
	if want := wantFastPath(); len(provs) == 1 && provs[0].(map[string]any)["fast_path"] != want {
		t.Errorf("providers: fast_path %v, want %v (Verify over the plugin's side channel on Linux)", provs[0].(map[string]any)["fast_path"], want)
	}

	// The audience must be enabled: totp is for clients only here.
	if v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "totp", "audience": "staff", "code": "123456"}); v.status != http.StatusForbidden || v.errCode() != "audience_not_allowed" {
		t.Errorf("staff audience: %d %v", v.status, v.body)
	}
	// Admin reset, then the user is not enrolled.
	if d := h.do("DELETE", "/v1/users/alice/enrollments/totp", adminKey, nil); d.status != http.StatusNoContent {
		t.Errorf("reset: %d %v", d.status, d.body)
	}
	if d := h.do("DELETE", "/v1/users/alice/enrollments/totp", adminKey, nil); d.status != http.StatusNotFound {
		t.Errorf("second reset: %d %v", d.status, d.body)
	}
	if v := h.verify("alice", h.code(secret)); v.str("reason") != "not_enrolled" {
		t.Errorf("after reset: %v", v.body)
	}
}

func TestHTTPRejectsBadRequests(t *testing.T) {
	h := startHost(t, totpClients)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown field", "POST", "/v1/users/alice/verify", `{"provider":"totp","audience":"client","code":"1","admin":true}`, 400, "invalid_json"},
		{"two objects", "POST", "/v1/users/alice/verify", `{"provider":"totp"}{"x":1}`, 400, "invalid_json"},
		{"empty body", "POST", "/v1/users/alice/verify", ``, 400, "invalid_json"},
		{"wrong type", "POST", "/v1/users/alice/verify", `{"provider":"totp","audience":"client","code":123456}`, 400, "invalid_json"},
		{"too large", "POST", "/v1/users/alice/verify", `{"code":"` + strings.Repeat("1", 70<<10) + `"}`, 413, "body_too_large"},
		{"user id too long", "POST", "/v1/users/" + long + "/verify", `{"provider":"totp","audience":"client","code":"1"}`, 400, "invalid_request"},
		{"control char in user", "POST", "/v1/users/a%01b/verify", `{"provider":"totp","audience":"client","code":"1"}`, 400, "invalid_request"},
		{"bad audience", "POST", "/v1/users/alice/verify", `{"provider":"totp","audience":"everyone","code":"1"}`, 400, "invalid_request"},
		{"unknown provider", "POST", "/v1/users/alice/verify", `{"provider":"sms","audience":"client","code":"1"}`, 404, "unknown_provider"},
		{"bad client ip", "POST", "/v1/users/alice/verify", `{"provider":"totp","audience":"client","code":"1","client_ip":"not-an-ip"}`, 400, "invalid_request"},
		{"unicode digits", "POST", "/v1/users/alice/verify", `{"provider":"totp","audience":"client","code":"١٢٣٤٥٦"}`, 200, ""},
		{"no route", "GET", "/v2/anything", ``, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.doRaw(tt.method, tt.path, appKey, tt.body)
			if r.status != tt.status || r.errCode() != tt.code {
				t.Errorf("%d %v, want %d %q", r.status, r.body, tt.status, tt.code)
			}
		})
	}
}

// TestPluginCrashRecovery kills the provider process mid-run: the host
// stays up, restarts it, and no enrollment is lost.
func TestPluginCrashRecovery(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	pids := testbin.Processes(h.pluginsDir)
	if len(pids) != 1 {
		t.Fatalf("want 1 plugin process, found %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := testbin.WaitExit(pids[0]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.clock.Add(30 * time.Second)
	v := h.verify("alice", h.code(secret))
	switch {
	case v.status == http.StatusServiceUnavailable && v.errCode() == "provider_unavailable":
	case v.status == http.StatusOK && v.str("outcome") == "allow":
	default:
		t.Fatalf("first verify after the crash: %d %v", v.status, v.body)
	}
	h.clock.Add(30 * time.Second)
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Fatalf("verify after restart: %d %v", v.status, v.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("recovery took %v", d)
	}
	if now := testbin.Processes(h.pluginsDir); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("plugin processes after restart: %v (killed %d)", now, pids[0])
	}
	p := h.do("GET", "/v1/providers", adminKey, nil).body["providers"].([]any)[0].(map[string]any)
	if p["restarts"].(float64) < 1 || p["running"] != true || p["fast_path"] != wantFastPath() {
		t.Errorf("provider status after restart (a new side channel with the new process): %v", p)
	}
}

// wantFastPath is whether the TOTP plugin's Verify should take its side
// channel here: on Linux, unless the host's switch is off.
func wantFastPath() bool {
	return runtime.GOOS == "linux" && !strings.EqualFold(os.Getenv(sdkplugin.EnvFastPath), "off")
}

// TestConcurrentSameCode: a code races through the real plugin from 20
// requests at once; exactly one may log in. The others are replays, or
// turned away by the attempt gate before they reach the plugin (429).
func TestConcurrentSameCode(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	code := h.code(secret)
	outcomes := httpBurst(t, []*testHost{h}, 20, func(h *testHost, _ int) response { return h.verify("alice", code) })
	if outcomes["allow/"] != 1 || outcomes["deny/replayed"]+outcomes["429"] != 19 {
		t.Errorf("outcomes = %v, want 1 allow and 19 replayed or locked out", outcomes)
	}
}

// TestBadConfigRefusedAtStartup: each mistake stops the host with the key
// named, before it serves anything.
func TestBadConfigRefusedAtStartup(t *testing.T) {
	plugins := pluginCopy(t)
	tests := []struct {
		name      string
		providers string
		wantInErr string
	}{
		{"missing issuer", "providers:\n  totp: {enabled: true, clients: true, settings: {digits: 6}}\n", "providers.totp.settings.issuer"},
		{"digits 7", "providers:\n  totp: {enabled: true, clients: true, settings: {issuer: X, digits: 7}}\n", "providers.totp.settings.digits"},
		{"unknown setting", "providers:\n  totp: {enabled: true, clients: true, settings: {issuer: X, digts: 6}}\n", "providers.totp.settings.digts"},
		{"unknown key", "providers:\n  totp: {enabled: true, clients: true, colour: blue, settings: {issuer: X}}\n", "providers.totp.colour"},
		{"missing binary", "providers:\n  duo: {enabled: true, clients: true}\n", filepath.Join(plugins, "twofactor-provider-duo")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, plugins, tt.providers)
			code, _, stderr := runCLI("serve", "--config", path)
			if code != 1 || !strings.Contains(stderr, tt.wantInErr) {
				t.Errorf("exit %d, stderr %q; want 1 and mention of %q", code, stderr, tt.wantInErr)
			}
			if pids := testbin.Processes(plugins); len(pids) != 0 {
				t.Errorf("plugin processes left behind: %v", pids)
			}
		})
	}
	t.Run("missing encryption key", func(t *testing.T) {
		path := writeConfig(t, plugins, totpClients)
		removeLine(t, path, "encryption_key:")
		code, _, stderr := runCLI("serve", "--config", path)
		if code != 1 || !strings.Contains(stderr, "encryption_key") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestPluginLogsReachHostLog: a provider's own log lines come out of the
// host's logger under the provider's name, and no secret rides along.
func TestPluginLogsReachHostLog(t *testing.T) {
	var buf syncbuf.Buffer
	h := startHostLog(t, totpClients, newBufferLogger(&buf))
	secret := h.enroll("alice")
	h.clock.Add(30 * time.Second)
	code := h.code(secret)
	h.verify("alice", code)
	log := buf.String()
	if !regexp.MustCompile(`twofactor\.totp[.\w-]*: configured: .*issuer="ACME Billing"`).MatchString(log) {
		t.Errorf("provider's configure line not in host log under its name:\n%s", log)
	}
	// \b: go-plugin logs random socket paths whose digits could contain
	// the code by chance; a code standing alone is what would be a leak.
	if strings.Contains(log, secret) || regexp.MustCompile(`\b`+code+`\b`).MatchString(log) {
		t.Errorf("log contains a secret or code:\n%s", log)
	}
}

func newBufferLogger(buf *syncbuf.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "twofactor", Output: buf, Level: hclog.Info})
}

// verdictOf names a verify's answer for counting: outcome/reason, or the
// HTTP status of an error.
func verdictOf(r response) string {
	if r.status >= 500 { // unexpected: name it, so a failure says what it was
		e, _ := r.body["error"].(map[string]any)
		return strconv.Itoa(r.status) + " " + fmt.Sprint(e["message"])
	}
	if r.status >= 400 {
		return strconv.Itoa(r.status)
	}
	return r.str("outcome") + "/" + r.str("reason")
}
