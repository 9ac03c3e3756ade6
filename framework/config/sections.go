package config

// The readers of the config's sections (providers, lockout) and of its
// typed keys: each value is checked against its bounds here, so a refused
// value names its dotted key.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/v2"

	"github.com/twofactor/twofactor/framework"
)

func (c *Config) parseProviders(k *koanf.Koanf) error {
	names := k.MapKeys("providers")
	slices.Sort(names)
	for _, n := range names {
		at := "providers." + n
		p := Provider{Name: n, Settings: map[string]string{}}
		var err error
		if p.Enabled, err = boolKey(k, at+".enabled"); err != nil {
			return err
		}
		if p.Staff, err = boolKey(k, at+".staff"); err != nil {
			return err
		}
		if p.Clients, err = boolKey(k, at+"."+audienceWord); err != nil {
			return err
		}
		if p.SHA256 = strings.ToLower(k.String(at + ".sha256")); p.SHA256 != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) {
			return keyErr(at+".sha256", "must be 64 hex digits (sha256sum of the binary)")
		}
		if p.Timeout, err = boundedDuration(k, at+".timeout", 0, MinTimeout, MaxTimeout); err != nil {
			return err
		}
		if p.Enabled && !p.Staff && !p.Clients {
			return keyErr(at, "enabled but neither staff nor client is true, so no one could use it")
		}
		for s, v := range k.Cut(at + ".settings").All() {
			switch v.(type) {
			case string, bool, int, int64, float64, uint64:
				p.Settings[s] = fmt.Sprint(v)
			default:
				return keyErr(at+".settings."+s, "must be a single value, not a list or map")
			}
		}
		if p.Enabled {
			c.Providers = append(c.Providers, p)
		}
	}
	return nil
}

func boolKey(k *koanf.Koanf, key string) (bool, error) {
	switch v := k.Get(key).(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string: // from the environment
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, keyErr(key, "%q is not true or false", v)
		}
		return b, nil
	default:
		return false, keyErr(key, "must be true or false")
	}
}

// SettingKey is the config path of a provider setting, for messages.
func SettingKey(provider, field string) string {
	return "providers." + provider + ".settings." + field
}

func (c *Config) parseLockout(k *koanf.Koanf) error {
	p := framework.DefaultLockoutPolicy
	var err error
	if p.FreeAttempts, err = intKey(k, "lockout.free_attempts", p.FreeAttempts, 1, 100); err != nil {
		return err
	}
	if p.MaxFailures, err = intKey(k, "lockout.max_failures", p.MaxFailures, 1, 100); err != nil {
		return err
	}
	if p.Backoff, err = durationKey(k, "lockout.backoff", p.Backoff); err != nil {
		return err
	}
	if p.MaxBackoff, err = durationKey(k, "lockout.max_backoff", p.MaxBackoff); err != nil {
		return err
	}
	if p.MaxBackoff < p.Backoff {
		return keyErr("lockout.max_backoff", "must not be shorter than lockout.backoff (%s)", p.Backoff)
	}
	if p.MaxFailures <= p.FreeAttempts {
		return keyErr("lockout.max_failures", "must be more than lockout.free_attempts (%d)", p.FreeAttempts)
	}
	c.Lockout = p
	l := framework.DefaultPushLimit
	if l.Max, err = intKey(k, "lockout.max_pushes", l.Max, 1, 20); err != nil {
		return err
	}
	if l.Window, err = durationKey(k, "lockout.push_window", l.Window); err != nil {
		return err
	}
	if l.Window < time.Minute || l.Window > 24*time.Hour {
		return keyErr("lockout.push_window", "%s is out of range [1m, 24h]", l.Window)
	}
	c.PushLimit = l
	return nil
}

// intKey reads an integer from YAML (int) or the environment (string).
func intKey(k *koanf.Koanf, key string, def, lo, hi int) (int, error) {
	var n int
	switch v := k.Get(key).(type) {
	case nil:
		return def, nil
	case int:
		n = v
	case int64:
		n = int(v)
	case float64:
		if v != float64(int(v)) {
			return 0, keyErr(key, "must be a whole number")
		}
		n = int(v)
	case string:
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return 0, keyErr(key, "%q is not a whole number", v)
		}
	default:
		return 0, keyErr(key, "must be a whole number")
	}
	if n < lo || n > hi {
		return 0, keyErr(key, "%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func durationKey(k *koanf.Koanf, key string, def time.Duration) (time.Duration, error) {
	v := k.Get(key)
	if v == nil {
		return def, nil
	}
	s, ok := v.(string)
	d, err := time.ParseDuration(s)
	if !ok || err != nil || d <= 0 {
		return 0, keyErr(key, "must be a positive duration such as \"30s\"")
	}
	return d, nil
}

// boundedDuration is durationKey within [lo, hi]; def when absent.
func boundedDuration(k *koanf.Koanf, key string, def, lo, hi time.Duration) (time.Duration, error) {
	d, err := durationKey(k, key, def)
	if err != nil || d == def {
		return d, err
	}
	if d < lo || d > hi {
		return 0, keyErr(key, "%s is out of range [%s, %s]", d, lo, hi)
	}
	return d, nil
}
