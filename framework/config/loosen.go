package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twofactor/twofactor/framework"
)

// A reload the host makes by itself (its file watcher) must not weaken
// the second factor: a file cut short at a line's end, before a whole
// section, still loads, and every default is the loose side (no factor
// required, every provider allowed, no lockout tuning). Loosened is the
// one definition of "weaker" the host judges a reload by; a change it
// names applies only on the admin's explicit reload (SIGHUP).
//
// Decided per field of Config (TestLoosenedEveryField keeps it whole):
//
//   - Policy, per audience: require true→false; grace_logins up while
//     require stays; allowed_providers letting in a provider the old list
//     left out (an audience with no list allowed every provider: adding
//     one is the admin's, and no cut file adds a block); remember_device
//     enabled, or its days up while enabled.
//   - Providers: one removed or disabled, or unticked for an audience (its
//     users lose their factor: told to enroll again, or let in by a
//     policy that does not require one); a binary pin removed (a changed
//     pin is an upgrade); the settings in looseSettings.
//   - Lockout and PushLimit: more attempts or pushes, shorter waits.
//   - Neutral: listen, keys, storage, API keys, plugins.dir, log,
//     metrics.public, timeouts, the file's hash and mode, other settings.

// Loosening is one change between two configurations that weakens the
// second factor: Key is the dotted config key, Change what it did.
type Loosening struct {
	Key    string
	Change string
}

func (l Loosening) String() string { return l.Key + " (" + l.Change + ")" }

// looseSetting is a provider setting one of whose values lets a user in
// without the factor, or lets the factor be answered by another party.
type looseSetting struct {
	provider, name string
	def            string // the provider's default, when the file says nothing
	loose          string // compared case-insensitively
	why            string
}

var looseSettings = []looseSetting{
	{"duo", "failmode", "secure", "safe", "users are let in without a second factor whenever Duo cannot be reached"},
	{"duo", "allow_custom_host", "false", "true", "any host may answer for Duo"},
}

// Loosened returns the changes from old to next that weaken the second
// factor, policy first, then providers (by name) and lockout.
func Loosened(old, next *Config) []Loosening {
	var out []Loosening
	add := func(key, format string, args ...any) {
		out = append(out, Loosening{Key: key, Change: fmt.Sprintf(format, args...)})
	}
	for _, a := range policyAudiences {
		at := "policy." + a.key
		o, n := old.Policy.For(a.aud), next.Policy.For(a.aud)
		switch {
		case o.Require && !n.Require:
			add(at+".require", "true → false: users without a second factor are let in")
		case o.Require && n.GraceLogins > o.GraceLogins:
			add(at+".grace_logins", "%d → %d: more logins without a second factor", o.GraceLogins, n.GraceLogins)
		}
		if wider := widened(o, n, next, a.aud); len(wider) > 0 {
			add(at+".allowed_providers", "now also allows %s", strings.Join(wider, ", "))
		}
		switch {
		case !o.RememberDevice.Enabled && n.RememberDevice.Enabled:
			add(at+".remember_device.enabled", "false → true: a remembered device skips the second factor")
		case o.RememberDevice.Enabled && n.RememberDevice.Days > o.RememberDevice.Days:
			add(at+".remember_device.days", "%d → %d: a remembered device skips the second factor longer", o.RememberDevice.Days, n.RememberDevice.Days)
		}
	}
	for _, op := range old.Providers {
		at := "providers." + op.Name
		i := slices.IndexFunc(next.Providers, func(p Provider) bool { return p.Name == op.Name })
		if i < 0 {
			add(at+".enabled", "disabled or removed: its users lose their second factor")
			continue
		}
		np := next.Providers[i]
		if op.Staff && !np.Staff {
			add(at+".staff", "true → false: its staff users lose their second factor")
		}
		if op.Clients && !np.Clients {
			add(at+"."+audienceWord, "true → false: its client users lose their second factor")
		}
		if op.SHA256 != "" && np.SHA256 == "" {
			add(at+".sha256", "removed: any binary in plugins.dir runs as the provider")
		}
		for _, s := range looseSettings {
			if s.provider == op.Name && !isLoose(op.Settings, s) && isLoose(np.Settings, s) {
				add(SettingKey(op.Name, s.name), "now %s: %s", s.loose, s.why)
			}
		}
	}
	ol, nl := old.Lockout, next.Lockout
	more := func(key string, o, n int) {
		if n > o {
			add(key, "%d → %d: more guesses", o, n)
		}
	}
	more("lockout.free_attempts", ol.FreeAttempts, nl.FreeAttempts)
	more("lockout.max_failures", ol.MaxFailures, nl.MaxFailures)
	if nl.Backoff < ol.Backoff {
		add("lockout.backoff", "%s → %s: guesses come faster", ol.Backoff, nl.Backoff)
	}
	if nl.MaxBackoff < ol.MaxBackoff {
		add("lockout.max_backoff", "%s → %s: guesses come faster", ol.MaxBackoff, nl.MaxBackoff)
	}
	if next.PushLimit.Max > old.PushLimit.Max {
		add("lockout.max_pushes", "%d → %d: more pushes to tire a user into approving one", old.PushLimit.Max, next.PushLimit.Max)
	}
	if next.PushLimit.Window < old.PushLimit.Window {
		add("lockout.push_window", "%s → %s: more pushes to tire a user into approving one", old.PushLimit.Window, next.PushLimit.Window)
	}
	return out
}

// widened returns the providers next lets aud use that an old list of
// allowed providers left out; none when old had no list.
func widened(o, n framework.AudiencePolicy, next *Config, aud framework.Audience) []string {
	if o.AllowedProviders == nil {
		return nil
	}
	var wider []string
	for _, p := range next.Providers {
		allowed := n.AllowedProviders == nil || slices.Contains(n.AllowedProviders, p.Name)
		if servesAudience(p, aud) && allowed && !slices.Contains(o.AllowedProviders, p.Name) {
			wider = append(wider, p.Name)
		}
	}
	return wider
}

func isLoose(settings map[string]string, s looseSetting) bool {
	v, ok := settings[s.name]
	if !ok {
		v = s.def
	}
	return strings.EqualFold(strings.TrimSpace(v), s.loose)
}
