package duo

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk/providertest"
)

// TestConformance runs the SDK's conformance kit against the Duo provider
// talking to the emulator, in this process and as the real plugin binary.
// The kit's user is known to Duo with a phone, so its enrollment asks for
// a passcode, which Options.Code provides (one the emulator accepts once,
// added as the kit asks), and the factors and pending-poll rules push to
// it. The allow/replay rule is left to this package's own tests: Duo, not
// the state, remembers a used passcode.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	e.emu.AddUser(providertest.UserID)
	settings := e.settings(nil)
	opts := providertest.Options{
		Code: func([]byte, time.Time) (string, error) {
			e.emu.AddPasscode(providertest.UserID, setupPasscode)
			return setupPasscode, nil
		},
		Skip: []providertest.Rule{providertest.RuleAllowReplay},
	}
	t.Run("in-process", func(t *testing.T) {
		providertest.Run(t, providertest.InProcess(New()), settings, opts)
	})
	t.Run("binary", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds and runs the plugin binary")
		}
		bin := filepath.Join(t.TempDir(), "twofactor-provider-duo")
		build := exec.Command("go", "build", "-o", bin, "github.com/twofactor/twofactor/cmd/twofactor-provider-duo")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		providertest.Run(t, providertest.Binary(bin), settings, opts)
	})
}
