package supervisor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/sdk"
)

// keyedProvider has a secret setting and a plain one, and counts its
// Configure calls (the settings it would be handed).
type keyedProvider struct {
	slowProvider
	configured *atomic.Int32
}

func (keyedProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "keyed", Schema: sdk.Schema{
		{Name: "host", Type: sdk.TypeString},
		{Name: "secret_key", Type: sdk.TypeString, Secret: true},
	}}, nil
}

func (k keyedProvider) Configure(context.Context, sdk.Settings) error {
	k.configured.Add(1)
	return nil
}

// TestExposedSecretRefused: a provider whose secret setting is written in
// a file others can read is not started (and is not handed the settings),
// with an error naming the setting, the file and the fix, never the value;
// a plain setting so written, or none, starts it.
func TestExposedSecretRefused(t *testing.T) {
	exposure := func(names ...string) *supervisor.Exposure {
		env := map[string]string{}
		for _, n := range names {
			env[n] = "TWOFACTOR_PROVIDERS__KEYED__SETTINGS__" + strings.ToUpper(n)
		}
		return &supervisor.Exposure{Settings: names, Where: "/etc/tf.yaml (mode 0644)", Fix: "chmod 600 /etc/tf.yaml", Env: env}
	}
	for _, tt := range []struct {
		name    string
		exposed *supervisor.Exposure
		refused bool
	}{
		{"nothing exposed", nil, false},
		{"a plain setting exposed", exposure("host"), false},
		{"the secret exposed", exposure("host", "secret_key"), true},
		{"the secret in a file still readable", inFile(t, exposure("host", "secret_key"), 0o644), true},
		{"the secret in a file made private since", inFile(t, exposure("host", "secret_key"), 0o600), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var configured atomic.Int32
			p := supervisor.New(supervisor.ProviderSpec{Name: "keyed", Impl: keyedProvider{configured: &configured},
				Settings: sdk.Settings{"host": "api.example", "secret_key": "s3cr3t-value"}, Exposed: tt.exposed}, fast)
			err := p.Start(context.Background())
			t.Cleanup(p.Stop)
			if !tt.refused {
				if err != nil || configured.Load() != 1 {
					t.Fatalf("start: %v (configured %d times)", err, configured.Load())
				}
				return
			}
			if !errors.Is(err, supervisor.ErrExposedSecret) {
				t.Fatalf("start: %v, want ErrExposedSecret", err)
			}
			for _, want := range []string{"secret_key", "/etc/tf.yaml (mode 0644)", "chmod 600 /etc/tf.yaml", "TWOFACTOR_PROVIDERS__KEYED__SETTINGS__SECRET_KEY",
				"next restart attempt (within 30s)"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "SETTINGS__HOST") {
				t.Errorf("error %q shows the secret, or names a plain setting", err)
			}
			if configured.Load() != 0 {
				t.Errorf("the provider was handed its settings %d times", configured.Load())
			}
		})
	}
}

// inFile names a real file of the given mode as e's File: each start
// looks at its mode again.
func inFile(t *testing.T, e *supervisor.Exposure, mode os.FileMode) *supervisor.Exposure {
	t.Helper()
	e.File = filepath.Join(t.TempDir(), "tf.yaml")
	if err := os.WriteFile(e.File, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.File, mode); err != nil {
		t.Fatal(err)
	}
	return e
}
