package host_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPinWorkflow: `digest` prints the pin, a pinned binary runs, and the
// same binary modified afterwards is refused with both digests named.
func TestPinWorkflow(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	code, out, stderr := runCLI("digest", "--config", path, "totp")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{64})  `).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("digest: exit %d, %q %q", code, out, stderr)
	}
	pin := m[1]
	pinned := strings.Replace(totpClients, "    enabled: true", "    enabled: true\n    sha256: "+pin, 1)
	path = writeConfig(t, plugins, pinned)
	if code, out, stderr := runCLI("providers", "--config", path); code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("pinned provider: exit %d\n%s%s", code, out, stderr)
	}

	bin := filepath.Join(plugins, "twofactor-provider-totp")
	f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	_, actualOut, _ := runCLI("digest", "--config", path, "totp")
	actual := actualOut[:64]
	code, out, stderr = runCLI("providers", "--config", path)
	if code == 0 || !strings.Contains(out, "expected sha256 "+pin) || !strings.Contains(out, "actual "+actual) {
		t.Errorf("tampered binary: exit %d\n%s%s", code, out, stderr)
	}
}
