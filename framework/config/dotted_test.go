package config

import (
	"errors"
	"testing"
)

// TestKeySetTwiceDottedAndNested: YAML lets a key be written nested
// (policy: {staff: {require: true}}) or dotted (policy.staff.require:
// true), and koanf reads both as the same path. A file that sets one
// path both ways was loaded without a word, and which value won depended
// on Go's map order, differently at each load: the same file gave staff
// two-factor required at one start or SIGHUP and not at the next, a
// provider enabled or not. As with the client audience's two spellings
// (canonical), which one was meant is not for the loader to guess: the
// file is refused, naming the key. Each case is loaded several times, so
// an answer that depended on the order would show.
func TestKeySetTwiceDottedAndNested(t *testing.T) {
	cases := []struct{ extra, key string }{
		{"policy:\n  staff:\n    require: true\npolicy.staff.require: false\n", "policy.staff.require"},
		{"policy.staff.require: false\npolicy:\n  staff:\n    require: true\n", "policy.staff.require"},
		{"policy:\n  staff.require: true\n  staff:\n    require: false\n", "policy.staff.require"},
		{"providers.totp.enabled: false\n", "providers.totp.enabled"},
		{"lockout:\n  free_attempts: 3\nlockout.free_attempts: 50\n", "lockout.free_attempts"},
	}
	for _, c := range cases {
		for range 20 {
			_, err := loadWith(t, c.extra, nil)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key {
				t.Fatalf("%q: err = %v, want a config error naming %s", c.extra, err, c.key)
			}
		}
	}
}

// TestDottedKeysAlone: a key written dotted, once, still loads.
func TestDottedKeysAlone(t *testing.T) {
	c, err := loadWith(t, "policy.staff.require: true\nlockout:\n  free_attempts: 3\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Policy.Staff.Require || c.Lockout.FreeAttempts != 3 {
		t.Errorf("policy %+v, lockout %+v", c.Policy.Staff, c.Lockout)
	}
}
