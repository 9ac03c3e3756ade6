package supervisor_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering holds the arrows of the layout: the supervisor never
// imports the framework (the framework imports it), and nothing under
// framework/ imports the host.
func TestLayering(t *testing.T) {
	tests := []struct {
		pkgs      string
		forbidden func(dep string) bool
	}{
		{"github.com/twofactor/twofactor/framework/supervisor", func(dep string) bool {
			return dep == "github.com/twofactor/twofactor/framework" ||
				strings.HasPrefix(dep, "github.com/twofactor/twofactor/host")
		}},
		{"github.com/twofactor/twofactor/framework/...", func(dep string) bool {
			return strings.HasPrefix(dep, "github.com/twofactor/twofactor/host")
		}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if tt.forbidden(dep) {
				t.Errorf("%s depends on %s", tt.pkgs, dep)
			}
		}
	}
}
