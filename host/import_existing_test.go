package host_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/sdk"
)

// TestImportOverExistingWritesNothing: a file in which some users
// further on already have a TOTP enrollment is refused before anything is
// written (before, the batches ahead of the first such user were
// committed and the import stopped there, half done, and running it again
// failed on its first batch). The refusal names those users with their
// lines, at most 20 of them and how many more, and says how to go on:
// --skip-existing imports everyone else, counts the skipped users, and
// never overwrites an enrollment. Running it again finds nothing to do.
func TestImportOverExistingWritesNothing(t *testing.T) {
	cfg := writeConfig(t, pluginCopy(t), totpClients)
	// 25 users already enrolled, with secret B.
	var first strings.Builder
	for i := range 25 {
		fmt.Fprintf(&first, "old%02d,%s\n", i, importSecretB)
	}
	if code, out, errOut := runImport(t, "--config", cfg, writeFile(t, "first.csv", first.String())); code != 0 {
		t.Fatalf("first import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// The new file: two new users, then the 25 again (with secret A), then
	// one more new user; in batches of one, as many transactions as lines.
	var again strings.Builder
	again.WriteString("new0," + importSecretA + "\nnew1," + importSecretA + "\n")
	for i := range 25 {
		fmt.Fprintf(&again, "old%02d,%s\n", i, importSecretA)
	}
	again.WriteString("new2," + importSecretA + "\n")
	file := writeFile(t, "again.csv", again.String())
	code, out, errOut := runImport(t, "--config", cfg, "--batch", "1", file)
	for _, want := range []string{"25 user(s) in the file already have a totp enrollment", `line 3: "old00"`, `line 22: "old19"`,
		"and 5 more", "nothing was imported", "--skip-existing"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("import over enrolled users: exit %d, stderr does not say %q:\n%s", code, want, errOut)
		}
	}
	if strings.Contains(errOut, `"old20"`) || strings.Contains(errOut+out, importSecretA) || strings.Contains(out, "imported") {
		t.Errorf("lists more than 20 users, quotes a secret or imported something: stdout %q, stderr %q", out, errOut)
	}
	// --dry-run says the same, and writes nothing either.
	if code, _, errOut := runImport(t, "--config", cfg, "--dry-run", file); code != 1 || !strings.Contains(errOut, "25 user(s) in the file already have") {
		t.Errorf("dry run over enrolled users: exit %d, stderr %q", code, errOut)
	}
	// Nothing was written: new0 imports cleanly on its own.
	if code, out, errOut := runImport(t, "--config", cfg, writeFile(t, "new0.csv", "new0,"+importSecretA+"\n")); code != 0 {
		t.Fatalf("new0 after the refusal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Finishing: the others are imported, the 25 and new0 skipped.
	code, out, errOut = runImport(t, "--config", cfg, "--batch", "1", "--skip-existing", file)
	if code != 0 || !strings.Contains(out, "imported 2 users into totp") || !strings.Contains(out, "skipped 26 user(s) who already have a totp enrollment") {
		t.Fatalf("--skip-existing: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runImport(t, "--config", cfg, "--skip-existing", file)
	if code != 0 || !strings.Contains(out, "imported 0 users into totp") || !strings.Contains(out, "skipped 28 user(s)") {
		t.Fatalf("--skip-existing again: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	sha1 := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for user, secret := range map[string]string{"new1": importSecretA, "new2": importSecretA, "old00": importSecretB, "old24": importSecretB} {
		if res := verifyImported(t, cfg, user, secret, sha1); res.Outcome != sdk.Allow {
			t.Errorf("%s: %s %s, want allow with its own secret (a skipped user is never overwritten)", user, res.Outcome, res.Reason)
		}
	}
}
