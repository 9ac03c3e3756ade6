package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/knadh/koanf/v2"

	"github.com/twofactor/twofactor/framework"
)

// policyAudiences are the audiences under policy, by config name.
var policyAudiences = []struct {
	key string
	aud framework.Audience
}{{"staff", framework.AudienceStaff}, {audienceWord, framework.AudienceClient}}

var policyFields = []string{"require", "grace_logins", "allowed_providers", "remember_device.enabled", "remember_device.days"}

// isPolicyKey reports whether key is one of policy.{staff,clients}.FIELD.
func isPolicyKey(key string) bool {
	rest, ok := strings.CutPrefix(key, "policy.")
	if !ok {
		return false
	}
	for _, a := range policyAudiences {
		if f, ok := strings.CutPrefix(rest, a.key+"."); ok && slices.Contains(policyFields, f) {
			return true
		}
	}
	return false
}

// parsePolicy reads policy.staff and policy.client (alias: clients). It runs after the
// providers are parsed: allowed_providers must name enabled providers that
// serve the audience.
func (c *Config) parsePolicy(k *koanf.Koanf) error {
	for _, a := range policyAudiences {
		at := "policy." + a.key
		var p framework.AudiencePolicy
		var err error
		if p.Require, err = boolKey(k, at+".require"); err != nil {
			return err
		}
		if p.GraceLogins, err = intKey(k, at+".grace_logins", 0, 0, framework.MaxGraceLogins); err != nil {
			return err
		}
		if p.GraceLogins > 0 && !p.Require {
			return keyErr(at+".grace_logins", "has no effect unless %s.require is true", at)
		}
		if p.RememberDevice.Enabled, err = boolKey(k, at+".remember_device.enabled"); err != nil {
			return err
		}
		if p.RememberDevice.Days, err = intKey(k, at+".remember_device.days", framework.DefaultRememberDays, 1, framework.MaxRememberDays); err != nil {
			return err
		}
		if p.AllowedProviders, err = c.allowedProviders(k, at+".allowed_providers", a.aud); err != nil {
			return err
		}
		serving := 0
		for _, pr := range c.Providers {
			if servesAudience(pr, a.aud) && (p.AllowedProviders == nil || slices.Contains(p.AllowedProviders, pr.Name)) {
				serving++
			}
		}
		if p.Require && serving == 0 {
			return keyErr(at+".require", "is true, but no enabled provider serves %s, so no one could log in", a.key)
		}
		if a.aud == framework.AudienceStaff {
			c.Policy.Staff = p
		} else {
			c.Policy.Clients = p
		}
	}
	return nil
}

func servesAudience(p Provider, aud framework.Audience) bool {
	return aud == framework.AudienceStaff && p.Staff || aud == framework.AudienceClient && p.Clients
}

// allowedProviders reads a list of provider names (from the environment,
// comma-separated); nil when the key is absent.
func (c *Config) allowedProviders(k *koanf.Koanf, key string, aud framework.Audience) ([]string, error) {
	var names []string
	switch v := k.Get(key).(type) {
	case nil:
		return nil, nil
	case string:
		for _, n := range strings.Split(v, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	case []any:
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, keyErr(fmt.Sprintf("%s[%d]", key, i), "must be a provider name")
			}
			names = append(names, s)
		}
	default:
		return nil, keyErr(key, "must be a list of provider names")
	}
	if len(names) == 0 || len(names) == 1 && names[0] == "" {
		return nil, keyErr(key, "is empty; leave it out to allow every provider enabled for the audience")
	}
	for i, n := range names {
		at := fmt.Sprintf("%s[%d]", key, i)
		if slices.Contains(names[:i], n) {
			return nil, keyErr(at, "%q is listed twice", n)
		}
		j := slices.IndexFunc(c.Providers, func(p Provider) bool { return p.Name == n })
		if j < 0 {
			return nil, keyErr(at, "%q is not an enabled provider (enable it under providers.%s)", n, n)
		}
		if !servesAudience(c.Providers[j], aud) {
			field := "staff"
			if aud == framework.AudienceClient {
				field = audienceWord
			}
			return nil, keyErr(at, "provider %q is not enabled for this audience (providers.%s.%s is false)", n, n, field)
		}
	}
	return names, nil
}
