package host_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestExposedDuoSecretRefused: the admin keeps the host's own keys in the
// environment, so a config file others can read (0644) loads, but pastes
// Duo's secret key into it. Duo is not started (its plugin is never
// handed the key); its status names the setting, the file and the fix,
// never the key; its users get provider_unavailable, no allow, though its
// failmode is safe. After chmod 600 Duo starts at its next restart
// attempt, without a reload; a reload with the file opened again is
// refused and Duo keeps running.
func TestExposedDuoSecretRefused(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("vic")
	_, skey := emu.Integration()
	plugins := pluginCopy(t)
	path, env := exposedDuoConfig(t, emu, plugins)
	cfg, err := config.Load(config.Source{File: path, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.InitStore(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h := startHostConfig(t, plugins, path, cfg, &clock{t: time.Now()}, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))

	duo := func() map[string]any {
		t.Helper()
		r := h.do("GET", "/v1/providers", adminKey, nil)
		if strings.Contains(toJSON(r.body), skey) {
			t.Fatal("the secret key is in the providers answer")
		}
		return r.body["providers"].([]any)[0].(map[string]any)
	}
	if p := duo(); p["running"] != false || !strings.Contains(str(p["last_error"]), "secret_key") ||
		!strings.Contains(str(p["last_error"]), "chmod 600 "+path) || !strings.Contains(str(p["last_error"]), "TWOFACTOR_PROVIDERS__DUO__SETTINGS__SECRET_KEY") {
		t.Fatalf("duo's status with its secret in a readable file: %v", p)
	}
	// Failmode safe lets users in when Duo cannot be reached; a provider
	// the host refused to start is no such outage.
	if r := h.do("POST", "/v1/users/vic/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); r.status != http.StatusServiceUnavailable || r.errCode() != "provider_unavailable" {
		t.Fatalf("enroll while duo is refused: %d %v", r.status, r.body)
	}

	// Made private: Duo starts at its next restart attempt (the backoff
	// is at most 30 s), without a reload.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(31 * time.Second)
	h.enrollDuo(emu, "vic", "staff")
	if p := duo(); p["running"] != true || p["health"] != "healthy" {
		t.Fatalf("duo's status after chmod 600: %v", p)
	}
	emu.AddPasscode("vic", "314159")
	if v := h.duoVerify("vic", map[string]string{"factor": "passcode", "code": "314159"}); v.str("outcome") != "allow" {
		t.Fatalf("login once duo runs: %d %v", v.status, v.body)
	}
	// A reload now (SIGHUP) applies: the file holds no exposed secret.
	if err := h.svc.Reload(context.Background()); err != nil {
		t.Fatalf("reload of the private file: %v", err)
	}
	waitReload(t, h.svc)

	// Opened to others again: the reload that would restart Duo with the
	// exposed key is refused, saying why, and the running Duo stays.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "secret_key") {
		t.Fatalf("reload with the file opened again: %v, want refused naming secret_key", err)
	}
	waitReload(t, h.svc)
	emu.AddPasscode("vic", "271828")
	if v := h.duoVerify("vic", map[string]string{"factor": "passcode", "code": "271828"}); v.str("outcome") != "allow" {
		t.Fatalf("login on the running duo after the refused reload: %d %v", v.status, v.body)
	}
}

// exposedDuoConfig writes a config file readable by others (0644) that
// holds Duo's settings, its secret key included, and the host's own keys
// in the environment it returns, so that it loads.
func exposedDuoConfig(t *testing.T, emu *duotest.Server, plugins string) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "twofactor.yaml")
	text := "listen: 127.0.0.1:0\nstorage: {driver: sqlite, dsn: twofactor.db}\nplugins: {dir: " + plugins + "}\n" +
		"api_keys:\n  - {name: panel, scope: app}\n  - {name: ops, scope: admin}\n" +
		"providers:\n" + duoSettings(t, emu, duoconfig.Options{Failmode: "safe"})
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, []string{"TWOFACTOR_ENCRYPTION_KEY=RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=",
		"TWOFACTOR_API_KEYS__0__KEY=" + appKey, "TWOFACTOR_API_KEYS__1__KEY=" + adminKey}
}

// TestDoctorExposedDuoSecret: twofactor doctor fails Duo's start with the
// setting, the file and the fix on its own line, and prints no key.
func TestDoctorExposedDuoSecret(t *testing.T) {
	emu := startEmulator(t)
	_, skey := emu.Integration()
	path, env := exposedDuoConfig(t, emu, pluginCopy(t))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.Source{File: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.InitStore(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.duo.activate")
	if code == 0 || st != "fail" || !strings.Contains(msg, "secret_readable") || !strings.Contains(msg, "secret_key") ||
		!strings.HasPrefix(fix, "chmod 600 "+path) || !strings.Contains(fix, "TWOFACTOR_PROVIDERS__DUO__SETTINGS__SECRET_KEY") {
		t.Errorf("doctor on an exposed Duo secret: exit %d, %q %q fix %q\n%s", code, st, msg, fix, out)
	}
	if strings.Contains(out, skey) {
		t.Fatal("doctor printed the secret key")
	}
}
