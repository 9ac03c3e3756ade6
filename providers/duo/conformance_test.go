package duo

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/twofactor/twofactor/sdk/providertest"
)

// TestConformance runs the SDK's conformance kit against the Duo provider
// talking to the emulator, in this process and as the real plugin binary.
// The kit cannot produce a Duo passcode itself, so the allow/replay rule
// is left to this package's own tests (a passcode is Duo's to check). The
// kit's user is known to Duo with a phone, so its enrollment finishes at
// once and the factors and pending-poll rules push to it.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	e.emu.AddUser(providertest.UserID)
	settings := e.settings(nil)
	t.Run("in-process", func(t *testing.T) {
		providertest.Run(t, providertest.InProcess(New()), settings)
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
		providertest.Run(t, providertest.Binary(bin), settings)
	})
}
