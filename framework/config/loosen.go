package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
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
//     pin is an upgrade); a setting changed in a way its provider's schema
//     marks as loosening (sdk.Loosens: Duo's failmode "safe", TOTP's
//     skew up, ...), judged by the provider's own mark so that the host
//     names no provider; any setting changed of a provider whose schema
//     is not known (it has not started since the host did).
//   - Lockout and PushLimit: more attempts or pushes, shorter waits.
//   - Neutral: listen, keys, storage, API keys, plugins.dir, log,
//     metrics.public, timeouts, the file's hash and mode, settings no
//     schema marks.

// Loosening is one change between two configurations that weakens the
// second factor: Key is the dotted config key, Change what it did.
type Loosening struct {
	Key    string
	Change string
}

func (l Loosening) String() string { return l.Key + " (" + l.Change + ")" }

// SchemaOf gives a provider's settings schema, ok false when it is not
// known (framework.Framework.SettingsSchema).
type SchemaOf func(provider string) (schema sdk.Schema, ok bool)

// Loosened returns the changes from old to next that weaken the second
// factor, policy first, then providers (in old's order) and lockout.
// schemaOf tells which provider settings loosen.
func Loosened(old, next *Config, schemaOf SchemaOf) []Loosening {
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
		out = append(out, looserSettings(op, np, schemaOf)...)
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

// looserSettings are the changes of a provider's settings from op to np
// that its schema marks as loosening, in the schema's order; with no
// schema known, every change (the host cannot tell, and fails closed).
func looserSettings(op, np Provider, schemaOf SchemaOf) []Loosening {
	if maps.Equal(op.Settings, np.Settings) {
		return nil
	}
	schema, ok := schemaOf(op.Name)
	if !ok {
		return []Loosening{{Key: "providers." + op.Name + ".settings",
			Change: "changed while the provider's schema is not known (it has not started since the host did): which changes weaken its factor cannot be told"}}
	}
	var out []Loosening
	for _, f := range schema {
		if f.Loosened(op.Settings[f.Name], np.Settings[f.Name]) {
			out = append(out, Loosening{Key: SettingKey(op.Name, f.Name),
				Change: fmt.Sprintf("now %s: %s", shownSetting(f, np.Settings[f.Name]), f.Loosens.Why)})
		}
	}
	return out
}

// shownSetting is a loosened setting's new value as the refusal shows
// it: a secret's never.
func shownSetting(f sdk.Field, raw string) string {
	switch {
	case f.Secret:
		return "changed"
	case strings.TrimSpace(raw) == "":
		return strconv.Quote(f.Default) + " (the default)"
	}
	return strconv.Quote(strings.TrimSpace(raw))
}
