package config

import (
	"errors"
	"testing"
)

// TestKeyWithNoValueRefused: a key written with no value was read as its
// default, and the defaults are the loose side: policy.client.require:
// gave false (users without a factor let in) and allowed_providers:
// every provider. A file cut at a line's end (a full disk, a writer that
// stopped) passes the reload's newline check and leaves exactly that, so
// the file is refused, naming the key.
func TestKeyWithNoValueRefused(t *testing.T) {
	refused := []struct{ extra, key string }{
		{"policy:\n  client:\n    require:\n", "policy.client.require"},
		{"policy:\n  staff:\n    require: true\n    allowed_providers:\n", "policy.staff.allowed_providers"},
		{"policy.staff.require:\n", "policy.staff.require"},
		{"lockout:\n  free_attempts:\n", "lockout.free_attempts"},
		{"    staff:\n", "providers.duo.staff"}, // under good.yaml's duo
		{"providers.totp.settings.digits:\n", "providers.totp.settings.digits"},
	}
	for _, c := range refused {
		_, err := loadWith(t, c.extra, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%q: err = %v, want a config error naming %s", c.extra, err, c.key)
		}
	}
}
