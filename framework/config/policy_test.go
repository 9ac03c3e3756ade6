package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

func loadWith(t *testing.T, extra string, env []string) (*Config, error) {
	t.Helper()
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, append(good, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = []string{}
	}
	return Load(Source{File: path, Environ: env})
}

func TestPolicyDefaults(t *testing.T) {
	c, err := loadWith(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Days: framework.DefaultRememberDays}}
	if !reflect.DeepEqual(c.Policy.Staff, want) || !reflect.DeepEqual(c.Policy.Clients, want) {
		t.Errorf("defaults: %+v", c.Policy)
	}
}

func TestPolicyLoads(t *testing.T) {
	c, err := loadWith(t, `policy:
  staff:
    require: true
    grace_logins: 2
    allowed_providers: [totp]
    remember_device: {enabled: true, days: 14}
  clients:
    remember_device: {enabled: true}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	staff := framework.AudiencePolicy{Require: true, GraceLogins: 2, AllowedProviders: []string{"totp"},
		RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 14}}
	if !reflect.DeepEqual(c.Policy.Staff, staff) {
		t.Errorf("staff = %+v, want %+v", c.Policy.Staff, staff)
	}
	if c.Policy.Clients.Require || c.Policy.Clients.AllowedProviders != nil || c.Policy.Clients.RememberDevice != (framework.RememberDevicePolicy{Enabled: true, Days: 30}) {
		t.Errorf("clients = %+v", c.Policy.Clients)
	}
}

func TestPolicyFromEnvironment(t *testing.T) {
	c, err := loadWith(t, "", []string{
		"TWOFACTOR_POLICY__CLIENTS__REQUIRE=true",
		"TWOFACTOR_POLICY__CLIENTS__GRACE_LOGINS=3",
		"TWOFACTOR_POLICY__CLIENTS__ALLOWED_PROVIDERS=totp",
		"TWOFACTOR_POLICY__CLIENTS__REMEMBER_DEVICE__ENABLED=true",
		"TWOFACTOR_POLICY__CLIENTS__REMEMBER_DEVICE__DAYS=7",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := framework.AudiencePolicy{Require: true, GraceLogins: 3, AllowedProviders: []string{"totp"},
		RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 7}}
	if !reflect.DeepEqual(c.Policy.Clients, want) {
		t.Errorf("clients = %+v, want %+v", c.Policy.Clients, want)
	}
}

func TestPolicyRefusedWithKeyNamed(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		wantKey    string
	}{
		{"disabled provider", "policy: {staff: {allowed_providers: [duo]}}\n", nil, "policy.staff.allowed_providers[0]"},
		{"unknown provider", "policy: {clients: {allowed_providers: [totp, sms]}}\n", nil, "policy.client.allowed_providers[1]"},
		{"provider not for the audience", "policy: {staff: {allowed_providers: [totp]}}\n",
			[]string{"TWOFACTOR_PROVIDERS__TOTP__STAFF=false"}, "policy.staff.allowed_providers[0]"},
		{"listed twice", "policy: {staff: {allowed_providers: [totp, totp]}}\n", nil, "policy.staff.allowed_providers[1]"},
		{"empty list", "policy: {staff: {allowed_providers: []}}\n", nil, "policy.staff.allowed_providers"},
		{"not a list", "policy: {staff: {allowed_providers: {totp: true}}}\n", nil, "policy.staff.allowed_providers.totp"},
		{"negative grace", "policy: {staff: {require: true, grace_logins: -1}}\n", nil, "policy.staff.grace_logins"},
		{"grace without require", "policy: {clients: {grace_logins: 2}}\n", nil, "policy.client.grace_logins"},
		{"days zero", "policy: {staff: {remember_device: {enabled: true, days: 0}}}\n", nil, "policy.staff.remember_device.days"},
		{"days above a year", "policy: {staff: {remember_device: {enabled: true, days: 400}}}\n", nil, "policy.staff.remember_device.days"},
		{"bad require", "policy: {staff: {require: maybe}}\n", nil, "policy.staff.require"},
		{"misspelt field", "policy: {staff: {requre: true}}\n", nil, "policy.staff.requre"},
		{"unknown audience", "policy: {admins: {require: true}}\n", nil, "policy.admins.require"},
		{"required with no provider", "policy: {staff: {require: true}}\n",
			[]string{"TWOFACTOR_PROVIDERS__TOTP__STAFF=false"}, "policy.staff.require"},
		{"bad grace from env", "", []string{"TWOFACTOR_POLICY__STAFF__GRACE_LOGINS=lots"}, "policy.staff.grace_logins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.yaml, tt.env)
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

// TestExamplePolicyBlock keeps the commented policy block of
// examples/twofactor.yaml valid: uncommented, it loads.
func TestExamplePolicyBlock(t *testing.T) {
	b, err := os.ReadFile("../../examples/twofactor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := withRealKeys(string(b))
	i := strings.Index(text, "\n# policy:\n")
	if i < 0 {
		t.Fatal("no commented policy block in the example")
	}
	var out strings.Builder
	out.WriteString(text[:i+1])
	for _, line := range strings.Split(text[i+1:], "\n") {
		out.WriteString(strings.TrimPrefix(line, "# ") + "\n")
	}
	path := filepath.Join(t.TempDir(), "twofactor.yaml")
	if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Policy.Staff.Require || c.Policy.Staff.GraceLogins != 3 || !c.Policy.Clients.RememberDevice.Enabled {
		t.Errorf("policy = %+v", c.Policy)
	}
}
