package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSDKImportsNothingFromTheHost keeps the SDK small and stable for
// provider authors: it may depend on itself and third-party modules, never
// on the host, the framework or a provider.
func TestSDKImportsNothingFromTheHost(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/twofactor/twofactor/") && !strings.HasPrefix(pkg, "github.com/twofactor/twofactor/sdk") {
			t.Errorf("sdk depends on %s", pkg)
		}
	}
}

// TestAuthorPackageCarriesNoHostClient: what a provider author imports
// (sdk) does not pull in the host's side of the wire (sdk/plugin) nor the
// conformance kit; those import sdk, never the other way.
func TestAuthorPackageCarriesNoHostClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "github.com/twofactor/twofactor/sdk/plugin", "github.com/twofactor/twofactor/sdk/providertest":
			t.Errorf("package sdk depends on %s", pkg)
		}
	}
}
