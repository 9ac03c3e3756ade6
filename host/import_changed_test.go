package host_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/host/cli"
	"github.com/twofactor/twofactor/sdk"
)

// rewriteOnCheck is the import's stdout: when the import says it checked
// the file, and before it writes anything, the file is rewritten.
type rewriteOnCheck struct {
	t      *testing.T
	path   string
	text   string
	tmpDir string // must hold no file, then or ever
	done   bool
	out    bytes.Buffer
}

func (w *rewriteOnCheck) Write(p []byte) (int, error) {
	if !w.done && bytes.Contains(p, []byte("checked ")) {
		w.done = true
		if names, _ := os.ReadDir(w.tmpDir); len(names) > 0 {
			w.t.Errorf("a named file in the temporary folder while importing: %v", names)
		}
		if err := os.WriteFile(w.path, []byte(w.text), 0o600); err != nil {
			w.t.Error(err)
		}
	}
	return w.out.Write(p)
}

// TestImportFileChangedAfterCheck: `twofactor import` checks the whole
// file before it writes anything, so that a bad line changes nothing.
// Here the file is rewritten between the check and the write (an export
// still running, a second copy landing), with line 7's secret broken.
// What is written must be what was checked: all ten users, with the
// secrets checked. Before, the write read the file again, imported the
// first batch and stopped at line 7, after the check had passed.
func TestImportFileChangedAfterCheck(t *testing.T) {
	cfg := writeConfig(t, pluginCopy(t), totpClients)
	lines := []string{"user,secret"}
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("u%d,%s", i, importSecretA))
	}
	good := strings.Join(lines, "\n") + "\n"
	lines[7] = "u6,notbase32!!"
	path := writeFile(t, "users.csv", good)

	// The copy of what was checked holds the secrets: it never has a name.
	tmpDir := t.TempDir()
	t.Setenv("TMPDIR", tmpDir)
	out := &rewriteOnCheck{t: t, path: path, text: strings.Join(lines, "\n") + "\n", tmpDir: tmpDir}
	var errOut bytes.Buffer
	code := cli.Main([]string{"import", "--config", cfg, "--batch", "3", path}, out, &errOut)
	if !out.done {
		t.Fatalf("the import never said it checked the file: exit %d, stdout %q, stderr %q", code, out.out.String(), errOut.String())
	}
	if code != 0 || !strings.Contains(out.out.String(), "imported 10 users") {
		t.Errorf("import of a file changed after its check: exit %d, stdout %q, stderr %q", code, out.out.String(), errOut.String())
	}
	if names, _ := os.ReadDir(tmpDir); len(names) > 0 {
		t.Errorf("left in the temporary folder: %v", names)
	}
	sha1 := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for _, user := range []string{"u0", "u6", "u9"} {
		if res := verifyImported(t, cfg, user, importSecretA, sha1); res.Outcome != sdk.Allow {
			t.Errorf("%s: %s %s, want allow with the secret checked", user, res.Outcome, res.Reason)
		}
	}
}
