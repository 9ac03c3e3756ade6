package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// looseBase is a running configuration with every guard of the second
// factor set: both audiences require a factor, staff with grace logins, a
// provider list and remembered devices; Duo fails secure and is pinned.
func looseBase() *Config {
	return &Config{
		Listen: "127.0.0.1:8740", StorageDriver: "sqlite", StorageDSN: "/var/lib/twofactor.db", PluginsDir: "/usr/lib/twofactor",
		LogLevel: "info", LogFormat: "text", ShutdownTimeout: DefaultShutdownTimeout,
		APIKeys: []APIKey{{Name: "panel", Scope: ScopeApp}},
		Providers: []Provider{
			{Name: "duo", Enabled: true, Staff: true, Clients: true, SHA256: strings.Repeat("a", 64),
				Settings: map[string]string{"failmode": "secure", "api_hostname": "api-1.duosecurity.com"}},
			{Name: "email", Enabled: true, Clients: true, Settings: map[string]string{"code_ttl": "5m"}},
			{Name: "totp", Enabled: true, Staff: true, Clients: true, Settings: map[string]string{"issuer": "ACME"}},
		},
		Lockout:   framework.DefaultLockoutPolicy,
		PushLimit: framework.DefaultPushLimit,
		Policy: framework.Policy{
			Staff: framework.AudiencePolicy{Require: true, GraceLogins: 2, AllowedProviders: []string{"duo", "totp"},
				RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 14}},
			Clients: framework.AudiencePolicy{Require: true, RememberDevice: framework.RememberDevicePolicy{Days: 30}},
		},
	}
}

// looseSchemas are the settings schemas Loosened is given in these
// tests: the marks as a Duo-like and a TOTP-like provider declare them
// (the providers' own tests check their real schemas); email's schema
// is not known (it has not started).
func looseSchemas(name string) (sdk.Schema, bool) {
	switch name {
	case "duo":
		return sdk.Schema{
			{Name: "api_hostname"},
			{Name: "allow_custom_host", Type: sdk.TypeBool, Default: "false", Loosens: &sdk.Loosens{Values: []string{"true"}, Why: "any host may answer"}},
			{Name: "failmode", Default: "secure", Loosens: &sdk.Loosens{Values: []string{"safe"}, Why: "users are let in without a second factor"}},
			{Name: "secret_key", Secret: true, Loosens: &sdk.Loosens{Values: []string{"open"}, Why: "a secret marked, to show it is not shown"}},
		}, true
	case "totp":
		return sdk.Schema{
			{Name: "issuer"},
			{Name: "skew", Type: sdk.TypeInt, Default: "1", Loosens: &sdk.Loosens{Higher: true, Why: "more codes are accepted"}},
		}, true
	}
	return nil, false
}

func provider(c *Config, name string) *Provider {
	i := slices.IndexFunc(c.Providers, func(p Provider) bool { return p.Name == name })
	return &c.Providers[i]
}

func dropProvider(c *Config, name string) {
	c.Providers = slices.DeleteFunc(c.Providers, func(p Provider) bool { return p.Name == name })
}

// TestLoosened decides, per field of Config, whether a change weakens the
// second factor (only an explicit reload may apply it) or not (the
// watcher applies it by itself).
func TestLoosened(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, next func(*Config) // nil: looseBase as it is
		want      []string      // the loosened keys, in order
	}{
		// Loosening.
		{"staff require off", nil, func(c *Config) { c.Policy.Staff.Require, c.Policy.Staff.GraceLogins = false, 0 },
			[]string{"policy.staff.require"}},
		{"client require off", nil, func(c *Config) { c.Policy.Clients.Require = false }, []string{"policy.client.require"}},
		{"grace logins up", nil, func(c *Config) { c.Policy.Staff.GraceLogins = 3 }, []string{"policy.staff.grace_logins"}},
		{"allowed list widened", func(c *Config) { provider(c, "email").Staff = true },
			func(c *Config) {
				provider(c, "email").Staff = true
				c.Policy.Staff.AllowedProviders = []string{"duo", "email", "totp"}
			}, []string{"policy.staff.allowed_providers"}},
		{"allowed list dropped, a provider it left out serves staff", func(c *Config) { provider(c, "email").Staff = true },
			func(c *Config) { provider(c, "email").Staff = true; c.Policy.Staff.AllowedProviders = nil },
			[]string{"policy.staff.allowed_providers"}},
		{"left-out provider ticked for staff", nil, func(c *Config) {
			provider(c, "email").Staff = true
			c.Policy.Staff.AllowedProviders = append(c.Policy.Staff.AllowedProviders, "email")
		}, []string{"policy.staff.allowed_providers"}},
		{"remember device allowed", nil, func(c *Config) { c.Policy.Clients.RememberDevice.Enabled = true },
			[]string{"policy.client.remember_device.enabled"}},
		{"remember device longer", nil, func(c *Config) { c.Policy.Staff.RememberDevice.Days = 30 },
			[]string{"policy.staff.remember_device.days"}},
		{"provider disabled or removed", nil, func(c *Config) {
			dropProvider(c, "duo")
			c.Policy.Staff.AllowedProviders = []string{"totp"}
		}, []string{"providers.duo.enabled"}},
		{"provider unticked for staff", nil, func(c *Config) {
			provider(c, "duo").Staff = false
			c.Policy.Staff.AllowedProviders = []string{"totp"}
		}, []string{"providers.duo.staff"}},
		{"provider unticked for clients", nil, func(c *Config) { provider(c, "totp").Clients = false }, []string{"providers.totp.client"}},
		{"failmode secure to safe", nil, func(c *Config) { provider(c, "duo").Settings["failmode"] = "safe" },
			[]string{"providers.duo.settings.failmode"}},
		{"failmode default to safe", func(c *Config) { delete(provider(c, "duo").Settings, "failmode") },
			func(c *Config) { provider(c, "duo").Settings["failmode"] = "Safe" }, []string{"providers.duo.settings.failmode"}},
		{"duo custom host allowed", nil, func(c *Config) { provider(c, "duo").Settings["allow_custom_host"] = "true" },
			[]string{"providers.duo.settings.allow_custom_host"}},
		{"duo custom host allowed, spelled 1", nil, func(c *Config) { provider(c, "duo").Settings["allow_custom_host"] = "1" },
			[]string{"providers.duo.settings.allow_custom_host"}},
		{"duo custom host allowed, spelled T", nil, func(c *Config) { provider(c, "duo").Settings["allow_custom_host"] = "T" },
			[]string{"providers.duo.settings.allow_custom_host"}},
		{"skew up", nil, func(c *Config) { provider(c, "totp").Settings["skew"] = "2" }, []string{"providers.totp.settings.skew"}},
		{"secret setting loosened", nil, func(c *Config) { provider(c, "duo").Settings["secret_key"] = "open" },
			[]string{"providers.duo.settings.secret_key"}},
		{"a provider with no known schema changes a setting", nil, func(c *Config) { provider(c, "email").Settings["code_ttl"] = "1m" },
			[]string{"providers.email.settings"}},
		{"binary pin removed", nil, func(c *Config) { provider(c, "duo").SHA256 = "" }, []string{"providers.duo.sha256"}},
		{"more free attempts", nil, func(c *Config) { c.Lockout.FreeAttempts = 10 }, []string{"lockout.free_attempts"}},
		{"more failures before the lock", nil, func(c *Config) { c.Lockout.MaxFailures = 200 }, []string{"lockout.max_failures"}},
		{"shorter backoff", nil, func(c *Config) { c.Lockout.Backoff = time.Second }, []string{"lockout.backoff"}},
		{"shorter max backoff", nil, func(c *Config) { c.Lockout.MaxBackoff = time.Minute }, []string{"lockout.max_backoff"}},
		{"more pushes", nil, func(c *Config) { c.PushLimit.Max = 10 }, []string{"lockout.max_pushes"}},
		{"shorter push window", nil, func(c *Config) { c.PushLimit.Window = time.Minute }, []string{"lockout.push_window"}},
		{"several at once", nil, func(c *Config) {
			c.Policy.Clients.Require = false
			provider(c, "duo").Settings["failmode"] = "safe"
			c.Lockout.FreeAttempts = 10
		}, []string{"policy.client.require", "providers.duo.settings.failmode", "lockout.free_attempts"}},

		// Tightening.
		{"require on", func(c *Config) { c.Policy.Clients.Require = false }, nil, nil},
		{"fewer grace logins", nil, func(c *Config) { c.Policy.Staff.GraceLogins = 1 }, nil},
		{"grace logins given with require turned on", func(c *Config) { c.Policy.Staff.Require, c.Policy.Staff.GraceLogins = false, 0 }, nil, nil},
		{"allowed list narrowed", nil, func(c *Config) { c.Policy.Staff.AllowedProviders = []string{"totp"} }, nil},
		{"allowed list set", nil, func(c *Config) { c.Policy.Clients.AllowedProviders = []string{"totp"} }, nil},
		{"remember device off", nil, func(c *Config) { c.Policy.Staff.RememberDevice.Enabled = false }, nil},
		{"remember device shorter", nil, func(c *Config) { c.Policy.Staff.RememberDevice.Days = 7 }, nil},
		{"failmode safe to secure", func(c *Config) { provider(c, "duo").Settings["failmode"] = "safe" }, nil, nil},
		{"failmode secure spelled out", func(c *Config) { delete(provider(c, "duo").Settings, "failmode") }, nil, nil},
		{"skew down to its default", func(c *Config) { provider(c, "totp").Settings["skew"] = "2" }, nil, nil},
		{"stricter lockout and pushes", nil, func(c *Config) {
			c.Lockout = framework.LockoutPolicy{FreeAttempts: 3, Backoff: time.Minute, MaxBackoff: 2 * time.Hour, MaxFailures: 50}
			c.PushLimit = framework.PushLimit{Max: 1, Window: time.Hour}
		}, nil},
		{"pin added", func(c *Config) { provider(c, "totp").SHA256 = "" }, func(c *Config) { provider(c, "totp").SHA256 = strings.Repeat("b", 64) }, nil},

		// Neutral.
		{"nothing", nil, nil, nil},
		{"log, listen, timeouts, storage, metrics", nil, func(c *Config) {
			c.LogLevel, c.LogFormat, c.Listen = "debug", "json", "127.0.0.1:9000"
			c.ShutdownTimeout, c.StorageDSN, c.MetricsPublic = time.Minute, "/srv/twofactor.db", true
			provider(c, "duo").Timeout = 20 * time.Second
		}, nil},
		{"API keys and keys", nil, func(c *Config) {
			c.APIKeys = append(c.APIKeys, APIKey{Name: "ops", Scope: ScopeAdmin})
			c.EncryptionKey, c.PreviousKeys = []byte("new"), [][]byte{[]byte("old")}
		}, nil},
		{"file facts", nil, func(c *Config) { c.Hash, c.Mode, c.Unended, c.PluginsDir = "x", 0o640, true, "/opt/twofactor" }, nil},
		{"pin changed (an upgrade)", nil, func(c *Config) { provider(c, "duo").SHA256 = strings.Repeat("c", 64) }, nil},
		{"other provider settings", nil, func(c *Config) {
			provider(c, "totp").Settings["issuer"] = "ACME Renamed"
			provider(c, "duo").Settings["api_hostname"] = "api-2.duosecurity.com"
		}, nil},
		{"a provider with no known schema, settings unchanged", nil, func(c *Config) { provider(c, "email").Staff = true }, nil},
		// A provider added for an audience that allowed every provider:
		// the admin restricted nothing, and no file cut short adds a block.
		{"provider added, no allowed list", func(c *Config) { dropProvider(c, "email") }, nil, nil},
		{"provider ticked for an audience, no allowed list", func(c *Config) { provider(c, "email").Staff = true; c.Policy.Staff.AllowedProviders = nil },
			func(c *Config) { provider(c, "email").Staff = true; c.Policy.Staff.AllowedProviders = nil }, nil},
		{"allowed list dropped, nothing more serves staff", nil, func(c *Config) { c.Policy.Staff.AllowedProviders = nil }, nil},
		{"remember days when not remembering", func(c *Config) { c.Policy.Clients.RememberDevice.Days = 7 }, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, next := looseBase(), looseBase()
			if tc.old != nil {
				tc.old(old)
			}
			if tc.old != nil {
				tc.old(next) // next starts as old
			}
			if tc.next != nil {
				tc.next(next)
			}
			var got []string
			for _, l := range Loosened(old, next, looseSchemas) {
				got = append(got, l.Key)
				if l.Change == "" {
					t.Errorf("%s: no change described", l.Key)
				}
				if strings.Contains(l.Change, "open") {
					t.Errorf("%s: a secret setting's value shown: %q", l.Key, l.Change)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("loosened = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLoosenedEveryField: a field added to Config must be decided here
// (and in TestLoosened) as loosening or neutral.
func TestLoosenedEveryField(t *testing.T) {
	decided := []string{"Listen", "EncryptionKey", "PreviousKeys", "StorageDriver", "StorageDSN", "APIKeys", "PluginsDir",
		"Providers", "LogLevel", "LogFormat", "Lockout", "PushLimit", "Source", "Hash", "Mode", "Unended", "MetricsPublic",
		"Policy", "ShutdownTimeout"}
	for f := range reflect.TypeFor[Config]().Fields() {
		if !slices.Contains(decided, f.Name) {
			t.Errorf("Config.%s: decide whether a change of it loosens the second factor (Loosened)", f.Name)
		}
	}
}

// TestLoosenedCutFile: a file cut at a line's end before its policy block
// still loads, and every guard it dropped is named.
func TestLoosenedCutFile(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := "policy:\n  staff:\n    require: true\n    remember_device: {enabled: false}\n  client:\n    require: true\n    allowed_providers: [totp]\n"
	load := func(text string) *Config {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Source{File: path, Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old, cut := load(string(good)+policy), load(string(good))
	var got []string
	for _, l := range Loosened(old, cut, looseSchemas) {
		got = append(got, l.Key)
	}
	if want := []string{"policy.staff.require", "policy.client.require"}; !slices.Equal(got, want) {
		t.Errorf("loosened = %v, want %v", got, want)
	}
	if l := Loosened(cut, old, looseSchemas); len(l) != 0 {
		t.Errorf("the policy block written back loosens %v", l)
	}
}
