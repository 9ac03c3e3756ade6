package supervisor

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// TestTimeoutsFor: the host's deadlines come from the spec, and from the
// provider's own declaration of a backend timeout, never from its name.
func TestTimeoutsFor(t *testing.T) {
	backend := sdk.Info{Schema: sdk.Schema{{Name: BackendTimeoutSetting, Type: sdk.TypeDuration, Default: "10s"}}}
	notDuration := sdk.Info{Schema: sdk.Schema{{Name: BackendTimeoutSetting, Type: sdk.TypeString}}}
	tests := []struct {
		name string
		spec ProviderSpec
		info sdk.Info
		want timeouts
	}{
		{"defaults", ProviderSpec{}, sdk.Info{}, timeouts{call: 5 * time.Second, control: 2 * time.Second, activate: 2 * time.Second}},
		{"short timeout shortens control calls", ProviderSpec{Timeout: time.Second}, sdk.Info{}, timeouts{call: time.Second, control: time.Second, activate: time.Second}},
		{"backend default plus margin", ProviderSpec{}, backend, timeouts{call: 12 * time.Second, control: 2 * time.Second, activate: 12 * time.Second}},
		{"backend setting plus margin", ProviderSpec{Settings: sdk.Settings{"timeout": "20s"}}, backend, timeouts{call: 22 * time.Second, control: 2 * time.Second, activate: 22 * time.Second}},
		{"longer host timeout wins", ProviderSpec{Timeout: 30 * time.Second, Settings: sdk.Settings{"timeout": "3s"}}, backend, timeouts{call: 30 * time.Second, control: 2 * time.Second, activate: 5 * time.Second}},
		{"invalid setting keeps defaults", ProviderSpec{Settings: sdk.Settings{"timeout": "soon"}}, backend, timeouts{call: 5 * time.Second, control: 2 * time.Second, activate: 2 * time.Second}},
		{"a field of another type declares nothing", ProviderSpec{}, notDuration, timeouts{call: 5 * time.Second, control: 2 * time.Second, activate: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := timeoutsFor(tt.spec, tt.info); got != tt.want {
				t.Errorf("timeoutsFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}
