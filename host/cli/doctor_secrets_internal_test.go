package cli

import (
	"slices"
	"testing"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/sdk"
)

// TestDoctorSecretsBySchema: doctor redacts a provider's settings by its
// schema's Secret flag when the provider declared one (email's code_key
// is secret whatever its name says; a plain setting is shown), and by
// name when it did not, or for a setting it does not declare: then a name
// that may hold a secret is redacted (fail closed).
func TestDoctorSecretsBySchema(t *testing.T) {
	cfg := &config.Config{Providers: []config.Provider{
		{Name: "email", Settings: map[string]string{
			"code_key":   "an-innocent-name-but-secret",
			"pin":        "s3",
			"smtp_host":  "smtp.example.com",
			"from":       "noreply@example.com",
			"stray_key":  "undeclared-so-by-its-name",
			"stray_note": "undeclared-and-harmless",
		}},
		{Name: "duo", Settings: map[string]string{
			"secret_key":      "by-name-without-a-schema",
			"skey":            "a-duo-secret-key-by-another-name",
			"api_hostname":    "api-1234.duosecurity.com",
			"client_password": "by-name-too",
		}},
	}}
	d := &doctor{cfg: cfg, schemas: map[string]sdk.Schema{"email": {
		{Name: "code_key", Secret: true},
		{Name: "pin", Secret: true},
		{Name: "smtp_host"},
		{Name: "from"},
	}}}
	got := d.secrets()
	for _, c := range []struct {
		value  string
		secret bool
	}{
		{"an-innocent-name-but-secret", true},
		{"s3", true}, // declared secret: however short
		{"smtp.example.com", false},
		{"noreply@example.com", false},
		{"undeclared-so-by-its-name", true},
		{"undeclared-and-harmless", false},
		{"by-name-without-a-schema", true},
		{"a-duo-secret-key-by-another-name", true},
		{"api-1234.duosecurity.com", false},
		{"by-name-too", true},
	} {
		if slices.Contains(got, c.value) != c.secret {
			t.Errorf("%q: redacted %v, want %v", c.value, !c.secret, c.secret)
		}
	}
	if s := redact("code_key an-innocent-name-but-secret on smtp.example.com", got); s != "code_key (secret) on smtp.example.com" {
		t.Errorf("redacted: %q", s)
	}
}
