package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
)

// TestPluginPermissionsRefused: like OpenSSH's StrictModes, a plugin
// binary, or its folder, that group or others can write is not started:
// the host (here through twofactor providers, which opens it as serve
// does) reports the provider unhealthy naming the path and the chmod that
// fixes it, no plugin process runs, and doctor fails the provider's
// binary check with that fix. After the chmod, both pass.
func TestPluginPermissionsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(plugins string) string
	}{
		{"0777 plugins folder", func(plugins string) string { return plugins }},
		{"0777 binary", func(plugins string) string { return filepath.Join(plugins, "twofactor-provider-totp") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugins := pluginCopy(t)
			path := writeConfig(t, plugins, totpClients)
			target := tc.target(plugins)
			if err := os.Chmod(target, 0o777); err != nil {
				t.Fatal(err)
			}
			fix := "chmod go-w " + target
			code, out, stderr := runCLI("providers", "--config", path)
			if code != 1 || !strings.Contains(out, "unhealthy") || !strings.Contains(out, fix) {
				t.Errorf("providers: exit %d, %q %q; want 1, unhealthy and %q", code, out, stderr, fix)
			}
			if pids := testbin.Processes(plugins); len(pids) != 0 {
				t.Errorf("plugin processes started: %v", pids)
			}
			code, out, rep := doctor(t, path)
			if st, msg, dfix := rep.check("provider.totp.binary"); code == 0 || st != "fail" || !strings.Contains(msg, target) ||
				!strings.HasPrefix(dfix, fix) {
				t.Errorf("doctor: exit %d, %s %q fix %q\n%s", code, st, msg, dfix, out)
			}
			if err := os.Chmod(target, 0o755); err != nil {
				t.Fatal(err)
			}
			if code, out, _ := doctor(t, path); code != 0 {
				t.Errorf("doctor after the chmod: exit %d\n%s", code, out)
			}
			if code, out, stderr := runCLI("providers", "--config", path); code != 0 {
				t.Errorf("providers after the chmod: exit %d %q %q", code, out, stderr)
			}
		})
	}
}
