package config

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// privateCopy copies a config from the repository (checked out 0644,
// which a config holding keys may not be: filemode.go) to a private file
// of a new folder.
func privateCopy(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadGood(t *testing.T) {
	path := privateCopy(t, "testdata/good.yaml")
	c, err := Load(Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Dir(path)
	if c.StorageDSN != filepath.Join(abs, "data/twofactor.db") || c.PluginsDir != filepath.Join(abs, "../bin") {
		t.Errorf("relative paths not resolved against the config folder: %q %q", c.StorageDSN, c.PluginsDir)
	}
	if len(c.Providers) != 1 || c.Providers[0].Name != "totp" || c.Providers[0].Settings["digits"] != "6" || c.Providers[0].Settings["issuer"] != "ACME Billing" {
		t.Errorf("providers = %+v (disabled ones must be left out)", c.Providers)
	}
	if len(c.APIKeys) != 2 || c.APIKeys[1].Scope != ScopeAdmin || c.APIKeys[0].Hash != sha256.Sum256([]byte("app-VLrnF0ZD3fCBuGRhAllUunTgaGwgQFn2b9Vf4s43ZNY")) {
		t.Errorf("api keys = %+v", c.APIKeys)
	}
	if c.Lockout != framework.DefaultLockoutPolicy {
		t.Errorf("lockout defaults: %+v", c.Lockout)
	}
	if c.LogLevel != "info" || c.LogFormat != "text" || len(c.EncryptionKey) != 32 {
		t.Errorf("defaults: %+v", c)
	}
	// A config written before the timeouts existed loads with their
	// defaults: the provider's Timeout stays zero (the supervisor's 5 s).
	if c.ShutdownTimeout != DefaultShutdownTimeout || c.Providers[0].Timeout != 0 {
		t.Errorf("timeout defaults: shutdown %s, provider %s", c.ShutdownTimeout, c.Providers[0].Timeout)
	}
}

// TestTimeouts reads providers.NAME.timeout and shutdown_timeout from the
// file and the environment.
func TestTimeouts(t *testing.T) {
	c, err := Load(Source{File: privateCopy(t, "testdata/good.yaml"), Environ: []string{
		"TWOFACTOR_PROVIDERS__TOTP__TIMEOUT=1500ms", "TWOFACTOR_SHUTDOWN_TIMEOUT=7s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers[0].Timeout != 1500*time.Millisecond || c.ShutdownTimeout != 7*time.Second {
		t.Errorf("timeouts: provider %s, shutdown %s", c.Providers[0].Timeout, c.ShutdownTimeout)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	c, err := Load(Source{File: privateCopy(t, "testdata/good.yaml"), Environ: []string{
		"TWOFACTOR_PROVIDERS__TOTP__SETTINGS__ISSUER=From Env",
		"TWOFACTOR_PROVIDERS__TOTP__STAFF=false",
		"TWOFACTOR_LISTEN=127.0.0.1:9999",
		"OTHER_VAR=ignored",
	}, Overrides: map[string]any{"listen": "127.0.0.1:7777"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers[0].Settings["issuer"] != "From Env" || c.Providers[0].Staff {
		t.Errorf("env not applied: %+v", c.Providers[0])
	}
	if c.Listen != "127.0.0.1:7777" {
		t.Errorf("flag override should win over env: %q", c.Listen)
	}
}

func TestLoadRefusesWithKeyNamed(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(string) string
		env     []string
		wantKey string
	}{
		{"unknown top-level key", func(s string) string { return s + "listne: x\n" }, nil, "listne"},
		{"unknown provider key", func(s string) string {
			return strings.Replace(s, "    enabled: true", "    enabled: true\n    stuff: true", 1)
		}, nil, "providers.totp.stuff"},
		{"missing encryption key", func(s string) string {
			return strings.Replace(s, "encryption_key: RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=\n", "", 1)
		}, nil, "encryption_key"},
		{"short encryption key", func(s string) string {
			return strings.Replace(s, "RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=", "c2hvcnQ=", 1)
		}, nil, "encryption_key"},
		{"placeholder encryption key", func(s string) string {
			return strings.Replace(s, "RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)
		}, nil, "encryption_key"},
		{"postgres needs a URL", func(s string) string {
			return strings.Replace(strings.Replace(s, "driver: sqlite", "driver: postgres", 1), "dsn: data/twofactor.db", "dsn: host=db", 1)
		}, nil, "storage.dsn"},
		{"unsupported driver", func(s string) string { return strings.Replace(s, "driver: sqlite", "driver: mysql", 1) }, nil, "storage.driver"},
		{"bad listen", func(s string) string { return strings.Replace(s, "listen: 127.0.0.1:0", "listen: nowhere", 1) }, nil, "listen"},
		{"short api key", func(s string) string {
			return strings.Replace(s, "app-VLrnF0ZD3fCBuGRhAllUunTgaGwgQFn2b9Vf4s43ZNY", "short", 1)
		}, nil, "api_keys[0].key"},
		{"bad scope", func(s string) string { return strings.Replace(s, "scope: app", "scope: root", 1) }, nil, "api_keys[0].scope"},
		{"duplicate key name", func(s string) string { return strings.Replace(s, "name: ops", "name: panel", 1) }, nil, "api_keys[1].name"},
		{"unknown api key field", func(s string) string { return strings.Replace(s, "scope: app}", "scope: app, role: x}", 1) }, nil, "api_keys[0].role"},
		{"enabled for nobody", func(s string) string {
			return strings.Replace(strings.Replace(s, "    staff: true\n", "", 1), "    clients: true\n", "", 1)
		}, nil, "providers.totp"},
		{"bad bool from env", nil, []string{"TWOFACTOR_PROVIDERS__TOTP__ENABLED=yes please"}, "providers.totp.enabled"},
		{"unknown key from env", nil, []string{"TWOFACTOR_STORAGE__DSNN=x"}, "storage.dsnn"},
		{"nested setting", func(s string) string { return strings.Replace(s, "digits: 6", "digits: [6, 8]", 1) }, nil, "providers.totp.settings.digits"},
		{"bad pin", func(s string) string {
			return strings.Replace(s, "    enabled: true", "    enabled: true\n    sha256: abc", 1)
		}, nil, "providers.totp.sha256"},
		{"bad previous key", func(s string) string { return s + "previous_encryption_keys: [c2hvcnQ=]\n" }, nil, "previous_encryption_keys[0]"},
		{"previous key equals current", nil, []string{"TWOFACTOR_PREVIOUS_ENCRYPTION_KEYS=fZ7fN8yyr73745IAqR/GCXkQps2Hnj2v0skiAB3fpEs=,RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20="}, "previous_encryption_keys[1]"},
		{"bad lockout backoff", func(s string) string { return s + "lockout: {backoff: soon}\n" }, nil, "lockout.backoff"},
		{"lockout cap below backoff", func(s string) string { return s + "lockout: {backoff: 1m, max_backoff: 30s}\n" }, nil, "lockout.max_backoff"},
		{"lockout free attempts out of range", nil, []string{"TWOFACTOR_LOCKOUT__FREE_ATTEMPTS=0"}, "lockout.free_attempts"},
		{"lockout max above NIST's 100", func(s string) string { return s + "lockout: {max_failures: 1000}\n" }, nil, "lockout.max_failures"},
		{"provider timeout not a duration", nil, []string{"TWOFACTOR_PROVIDERS__TOTP__TIMEOUT=soon"}, "providers.totp.timeout"},
		{"provider timeout too short", nil, []string{"TWOFACTOR_PROVIDERS__TOTP__TIMEOUT=1ms"}, "providers.totp.timeout"},
		{"provider timeout beyond the write timeout", func(s string) string {
			return strings.Replace(s, "    enabled: true", "    enabled: true\n    timeout: 5m", 1)
		}, nil, "providers.totp.timeout"},
		{"shutdown timeout too long", func(s string) string { return s + "shutdown_timeout: 1h\n" }, nil, "shutdown_timeout"},
		{"bad provider name", func(s string) string { return s + "  Bad_Name:\n    enabled: true\n" }, nil, "providers.Bad_Name"},
		{"empty key name", func(s string) string { return s + "\"\": x\n" }, nil, `""`},
		{"empty nested key name", func(s string) string { return s + "metrics: {\"\": x}\n" }, nil, `"metrics."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := string(good)
			if tt.edit != nil {
				text = tt.edit(text)
			}
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(Source{File: path, Environ: tt.env})
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.wantKey {
				t.Fatalf("err = %v, want an error naming %q", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("message %q does not name the key", err)
			}
		})
	}
}

// TestExampleConfig keeps examples/twofactor.yaml loadable: as shipped,
// its placeholder keys are refused, the encryption key first and then
// (with a real one from the environment) the first API key; with real keys
// in place of every placeholder it loads.
func TestExampleConfig(t *testing.T) {
	example := privateCopy(t, "../../examples/twofactor.yaml")
	env := []string{"TWOFACTOR_ENCRYPTION_KEY=" + freshKey()}
	var ce *Error
	if _, err := Load(Source{File: example, Environ: []string{}}); !errors.As(err, &ce) || ce.Key != "encryption_key" {
		t.Errorf("placeholder encryption key accepted or wrong error: %v", err)
	}
	if _, err := Load(Source{File: example, Environ: env}); !errors.As(err, &ce) || ce.Key != "api_keys[0].key" ||
		!strings.Contains(ce.Message, "twofactor keygen") {
		t.Errorf("placeholder API key accepted or wrong error: %v", err)
	}
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "twofactor.yaml")
	if err := os.WriteFile(path, []byte(withRealKeys(string(b))), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Source{File: path, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 1 || c.Providers[0].Settings["issuer"] != "ACME Billing" || len(c.APIKeys) != 2 {
		t.Errorf("example loaded as %+v", c)
	}
}

// TestMetricsPublic: /metrics needs an admin key unless metrics.public is
// set, from the file or the environment.
func TestMetricsPublic(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	load := func(extra string, env ...string) (*Config, error) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, append(good, extra...), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(Source{File: path, Environ: env})
	}
	if c, err := load(""); err != nil || c.MetricsPublic {
		t.Errorf("default: %v %v, want private", c, err)
	}
	if c, err := load("metrics: {public: true}\n"); err != nil || !c.MetricsPublic {
		t.Errorf("metrics.public: true: %v", err)
	}
	if c, err := load("metrics: {public: true}\n", "TWOFACTOR_METRICS__PUBLIC=false"); err != nil || c.MetricsPublic {
		t.Errorf("environment should win: %v", err)
	}
	var ce *Error
	if _, err := load("metrics: {public: sometimes}\n"); !errors.As(err, &ce) || ce.Key != "metrics.public" {
		t.Errorf("bad value: %v, want an error naming metrics.public", err)
	}
	if _, err := load("metrics: {path: /m}\n"); !errors.As(err, &ce) || ce.Key != "metrics.path" {
		t.Errorf("unknown key: %v, want an error naming metrics.path", err)
	}
}
