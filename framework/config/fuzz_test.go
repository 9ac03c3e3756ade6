package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/internal/keyrules"
)

// FuzzLoad feeds arbitrary file text to Load (with an empty environment).
// It must not panic, and either give a config that holds every promise
// Load makes or refuse with an error that says where: a *Error naming a
// key, or a YAML error naming a line.
func FuzzLoad(f *testing.F) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(good))
	const minimal = "encryption_key: RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=\n" +
		"storage: {dsn: t.db}\nplugins: {dir: bin}\n" +
		"api_keys: [{name: a, key: app-VLrnF0ZD3fCBuGRhAllUunTgaGwgQFn2b9Vf4s43ZNY, scope: app}]\n"
	f.Add(minimal)
	for _, extra := range []string{
		"listen: \"[::1]:8740\"\n",
		"previous_encryption_keys: [9dePX4oslHBN1q6B0honaF5scPdVNFLWBnkEEQO99XQ=]\n",
		"previous_encryption_keys: 9dePX4oslHBN1q6B0honaF5scPdVNFLWBnkEEQO99XQ=,RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=\n",
		"lockout: {free_attempts: 3, max_failures: 10, backoff: 1s, max_backoff: 1h}\n",
		"lockout: {free_attempts: 3.5}\n",
		"lockout: {backoff: -1s}\n",
		"log: {level: debug, format: json}\n",
		"metrics: {public: yes}\n",
		"providers: {totp: {enabled: true, clients: true, settings: {issuer: X, digits: 8}}}\n" +
			"policy: {clients: {require: true, grace_logins: 2, allowed_providers: [totp], remember_device: {enabled: true, days: 30}}}\n",
		"providers: {totp: {enabled: true, clients: true}}\npolicy: {staff: {require: true}}\n",
		"providers: {totp: {enabled: true}}\n",
		"providers: {TOTP: {enabled: true, staff: true}}\n",
		"providers: {totp: {settings: {issuer: [a, b]}}}\n",
		"providers: {totp: {settings: {a.b: c}}}\n",
		"providers: {totp: {sha256: zz}}\n",
		"storage: {driver: postgres, dsn: \"postgres://db/x\"}\n",
		"storage: {driver: mysql}\n",
		"api_keys: [{name: a, key: short, scope: app}]\n",
		"api_keys: [{name: a, key: app-VLrnF0ZD3fCBuGRhAllUunTgaGwgQFn2b9Vf4s43ZNY, scope: root}]\n",
		"api_keys: [x]\n",
		"api_keys: {a: b}\n",
		"listne: x\n",
		"a: &a [*a, *a]\n",
		"x: !!binary AAAA\n",
		"\t- tab\n",
		"listen: \"\\x00\"\n",
	} {
		f.Add(minimal + extra)
	}
	for _, s := range []string{"", "null", "[]", "- a\n- b\n", "{", "key: [", "\xff\xfe", "a: b\n  c: d\n", "%YAML 9.9\n---\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "twofactor.yaml")
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 16<<10 {
			return // far beyond any config file; the parser's cost is not the question
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Source{File: path, Environ: []string{}})
		if err != nil {
			var ce *Error
			switch {
			case errors.As(err, &ce):
				if ce.Key == "" || ce.Message == "" {
					t.Fatalf("an error without a key or message: %#v", ce)
				}
			case strings.Contains(err.Error(), "yaml: "):
				if !yamlAtLine.MatchString(err.Error()) {
					t.Fatalf("a YAML error that names no line: %v (for %q)", err, text)
				}
			default:
				t.Fatalf("an error that names neither a key nor a line: %v (for %q)", err, text)
			}
			return
		}
		checkConfig(t, c, dir)
	})
}

// checkConfig checks what a loaded config promises.
func checkConfig(t *testing.T, c *Config, dir string) {
	t.Helper()
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		t.Fatalf("listen %q", c.Listen)
	}
	if len(c.EncryptionKey) != framework.KeySize || keyrules.WeakEncryptionKey(c.EncryptionKey) != "" {
		t.Fatalf("encryption key of %d bytes: %s", len(c.EncryptionKey), keyrules.WeakEncryptionKey(c.EncryptionKey))
	}
	for _, k := range c.PreviousKeys {
		if len(k) != framework.KeySize || string(k) == string(c.EncryptionKey) || keyrules.WeakEncryptionKey(k) != "" {
			t.Fatalf("previous key of %d bytes", len(k))
		}
	}
	switch c.StorageDriver {
	case "sqlite":
		if !filepath.IsAbs(c.StorageDSN) {
			t.Fatalf("sqlite dsn %q is not absolute", c.StorageDSN)
		}
	case "postgres":
		if !strings.HasPrefix(c.StorageDSN, "postgres://") && !strings.HasPrefix(c.StorageDSN, "postgresql://") {
			t.Fatalf("postgres dsn %q", c.StorageDSN)
		}
	default:
		t.Fatalf("storage driver %q", c.StorageDriver)
	}
	if !filepath.IsAbs(c.PluginsDir) {
		t.Fatalf("plugins dir %q", c.PluginsDir)
	}
	if len(c.APIKeys) == 0 {
		t.Fatal("no API key")
	}
	names := map[string]bool{}
	for _, k := range c.APIKeys {
		if k.Name == "" || names[k.Name] || (k.Scope != ScopeApp && k.Scope != ScopeAdmin) {
			t.Fatalf("API key %q (%s)", k.Name, k.Scope)
		}
		names[k.Name] = true
	}
	if !slices.Contains([]string{"trace", "debug", "info", "warn", "error"}, c.LogLevel) || (c.LogFormat != "text" && c.LogFormat != "json") {
		t.Fatalf("log %q %q", c.LogLevel, c.LogFormat)
	}
	l := c.Lockout
	if l.FreeAttempts < 1 || l.MaxFailures <= l.FreeAttempts || l.Backoff <= 0 || l.MaxBackoff < l.Backoff {
		t.Fatalf("lockout %+v", l)
	}
	for _, p := range c.Providers {
		if !providerName.MatchString(p.Name) || !p.Enabled || (!p.Staff && !p.Clients) {
			t.Fatalf("provider %+v", p)
		}
		if p.SHA256 != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) {
			t.Fatalf("provider %s sha256 %q", p.Name, p.SHA256)
		}
	}
	for _, a := range policyAudiences {
		p := c.Policy.For(a.aud)
		if p.GraceLogins < 0 || p.GraceLogins > framework.MaxGraceLogins || (p.GraceLogins > 0 && !p.Require) {
			t.Fatalf("policy %s: %+v", a.key, p)
		}
		serving := 0
		for _, pr := range c.Providers {
			if servesAudience(pr, a.aud) && (p.AllowedProviders == nil || slices.Contains(p.AllowedProviders, pr.Name)) {
				serving++
			}
		}
		if p.Require && serving == 0 {
			t.Fatalf("policy %s requires a factor no provider serves", a.key)
		}
	}
	if c.Hash == "" || c.Source.File == "" {
		t.Fatal("no source or hash")
	}
}

// TestYAMLErrorNamesLine: go-yaml names no line for a control character,
// invalid UTF-8, an anchor that contains itself or a problem on the first
// line; Load adds it (found by FuzzLoad).
func TestYAMLErrorNamesLine(t *testing.T) {
	for text, want := range map[string]string{
		"listen: 127.0.0.1:1\nlog: {level: info}\nplugins: {dir: \x01}\n": "line 3: yaml: control characters are not allowed",
		"listen: 127.0.0.1:1\nplugins: {dir: \xff}\n":                     "line 2: yaml: invalid leading UTF-8 octet",
		"listen: 127.0.0.1:1\nx: &a [*a]\n":                               "line 2: yaml: anchor 'a' value contains itself",
		"%YAML 9.9\n---\nlisten: 127.0.0.1:1\n":                           "line 1: yaml: found incompatible YAML document",
		"listen: [\n":                                                     "yaml: line 1: did not find expected node content",
	} {
		path := filepath.Join(t.TempDir(), "twofactor.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Source{File: path, Environ: []string{}})
		if err == nil || !strings.HasSuffix(err.Error(), ": "+want) {
			t.Errorf("%q: %v, want it to end with %q", text, err, want)
		}
	}
}
