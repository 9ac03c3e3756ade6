package host_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/twofactor/twofactor/framework"
)

// hotpExample is the third-party HOTP provider: its own module, written
// only against the SDK.
const hotpExample = "../examples/provider-hotp"

// hotpPlugins builds the HOTP example into a fresh plugins folder, as
// `make build` builds it into bin/.
func hotpPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "twofactor-provider-hotp"), ".")
	build.Dir = hotpExample
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", hotpExample, err, out)
	}
	return dir
}

// hotpConfig is the example's config block (the one README and the guide
// show), with the binary pinned by its SHA-256 as the guide says.
func hotpConfig(t *testing.T, plugins string) string {
	t.Helper()
	block, err := os.ReadFile(filepath.Join(hotpExample, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := framework.FileSHA256(filepath.Join(plugins, "twofactor-provider-hotp"))
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^(\s*)# sha256: .*$`)
	if !pin.Match(block) {
		t.Fatalf("%s/config.yaml has no commented sha256 line to fill in", hotpExample)
	}
	return pin.ReplaceAllString(string(block), "${1}sha256: "+sum)
}

// startHostWith runs a host on its own plugins folder and providers
// config; startHost copies only the built-in plugins.
func startHostWith(t *testing.T, plugins, providers string) *testHost {
	t.Helper()
	return startHostIn(t, plugins, providers, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
}

// TestHOTPThroughHost: a user enrolls a hardware token with the HOTP
// example provider and logs in through the real host and plugin process;
// a replayed counter is refused, and after 20 presses that never reached
// the host two consecutive codes resynchronise the token.
func TestHOTPThroughHost(t *testing.T) {
	plugins := hotpPlugins(t)
	h := startHostWith(t, plugins, hotpConfig(t, plugins))

	p := h.do("GET", "/v1/providers", adminKey, nil)
	provs, _ := p.body["providers"].([]any)
	if p.status != 200 || len(provs) != 1 {
		t.Fatalf("providers: %d %v", p.status, p.body)
	}
	if st := provs[0].(map[string]any); st["name"] != "hotp" || st["health"] != "healthy" || st["version"] != "1.0.0" || st["running"] != true {
		t.Fatalf("hotp provider: %v", st)
	}

	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]string{"provider": "hotp", "audience": "client"})
	if r.status != http.StatusCreated || r.str("status") != "pending" {
		t.Fatalf("begin: %d %v", r.status, r.body)
	}
	d := r.body["display"].(map[string]any)
	u, _ := d["otpauth_url"].(string)
	if !strings.HasPrefix(u, "otpauth://hotp/ACME%20Billing:alice?") || !strings.Contains(u, "counter=0") || !strings.HasPrefix(d["qr_png_base64"].(string), "iVBORw0KGgo") {
		t.Errorf("display = %v", d)
	}
	key, err := otp.NewKeyFromURL(u)
	if err != nil {
		t.Fatal(err)
	}
	// press is the token showing its code for a counter.
	press := func(counter uint64) string {
		t.Helper()
		c, err := hotp.GenerateCode(key.Secret(), counter)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	verify := func(code string) (string, string) {
		t.Helper()
		v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "hotp", "audience": "client", "code": code})
		if v.status != http.StatusOK {
			t.Fatalf("verify %s: %d %v", code, v.status, v.body)
		}
		return v.str("outcome"), v.str("reason")
	}

	wrong := "000000"
	if press(0) == wrong {
		wrong = "111111"
	}
	if c := h.do("POST", "/v1/users/alice/enrollments/hotp/confirm", appKey, map[string]string{"code": wrong}); c.status != http.StatusUnprocessableEntity || c.errCode() != "invalid_code" {
		t.Errorf("wrong confirmation: %d %v", c.status, c.body)
	}
	if c := h.do("POST", "/v1/users/alice/enrollments/hotp/confirm", appKey, map[string]string{"code": press(0)}); c.status != http.StatusOK || c.str("status") != "active" {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}

	steps := []struct {
		what            string
		code            string
		outcome, reason string
	}{
		{"the confirmation code is spent", press(0), "deny", "replayed"},
		{"first login", press(1), "allow", ""},
		{"the same counter again", press(1), "deny", "replayed"},
		{"an older counter", press(0), "deny", "replayed"},
		{"a wrong code", wrong, "deny", "invalid_code"},
		{"two presses skipped, within the look-ahead", press(4), "allow", ""},
		// Pressed 20 more times without logging in: counters 5 to 24 are
		// gone and 25 is beyond the look-ahead window of 10.
		{"20 presses unseen", press(25), "deny", "resync_required"},
		{"the next press resynchronises", press(26), "allow", ""},
		{"the resynchronising code is spent", press(26), "deny", "replayed"},
		{"the code that asked for it too", press(25), "deny", "replayed"},
		{"and the token goes on", press(27), "allow", ""},
	}
	for _, s := range steps {
		if out, reason := verify(s.code); out != s.outcome || reason != s.reason {
			t.Errorf("%s: %s %s, want %s %s", s.what, out, reason, s.outcome, s.reason)
		}
	}

	// The audit log has the resynchronisation.
	a := h.do("GET", "/v1/audit?user=alice", adminKey, nil)
	if !strings.Contains(toJSON(a.body), `"reason":"resync_required"`) {
		t.Errorf("audit log lacks the resync request: %v", a.body)
	}
}
