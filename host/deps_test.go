package host_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHostLayering holds the arrows of host's split (issue 19 part 4):
// cli → host → api → framework. The API never imports the service or the
// CLI, the service never imports the CLI, and nothing under framework/
// imports anything of the host. (Tests may cross: host's end-to-end tests
// run the CLI.)
func TestHostLayering(t *testing.T) {
	const mod = "github.com/twofactor/twofactor/"
	tests := []struct {
		pkgs      string
		forbidden func(dep string) bool
	}{
		{mod + "host/api", func(dep string) bool {
			return dep == mod+"host" || dep == mod+"host/cli"
		}},
		{mod + "host", func(dep string) bool { return dep == mod+"host/cli" }},
		{mod + "framework/...", func(dep string) bool {
			return dep == mod+"host" || strings.HasPrefix(dep, mod+"host/")
		}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %d packages; the check would hold vacuously", tt.pkgs, len(deps))
		}
		for _, dep := range deps {
			if tt.forbidden(dep) {
				t.Errorf("%s depends on %s", tt.pkgs, dep)
			}
		}
	}
}
