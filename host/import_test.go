package host_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/host/cli"
	"github.com/twofactor/twofactor/sdk"
)

// Secrets as another system exports them: 20 and 32 bytes of base32.
const (
	importSecretA = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	importSecretB = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA"
)

func runImport(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(append([]string{"import"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyImported opens the service on the config and verifies user with
// the code secret gives now.
func verifyImported(t *testing.T, cfgPath, user, secret string, opts totp.ValidateOpts) framework.VerifyResult {
	t.Helper()
	cfg, err := config.Load(config.Source{File: cfgPath, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := host.Open(context.Background(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	code, err := totp.GenerateCodeCustom(secret, time.Now(), opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Framework.Verify(context.Background(), verifyInput(user, code))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestImportCommand: users imported from CSV and JSON Lines verify with
// the codes their apps already show (a user already enrolled:
// import_existing_test.go).
func TestImportCommand(t *testing.T) {
	cfg := writeConfig(t, pluginCopy(t), totpClients)
	csv := writeFile(t, "users.csv", "user,secret,digits,period,algorithm\n"+
		"alice,"+strings.ToLower(importSecretA)+",,,\n"+
		"bob,"+importSecretB+",8,60,SHA256\n")
	code, out, errOut := runImport(t, "--config", cfg, "--dry-run", csv)
	if code != 0 || !strings.Contains(out, "checked 2 users") || strings.Contains(out, "imported") {
		t.Fatalf("dry run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runImport(t, "--config", cfg, csv)
	if code != 0 || !strings.Contains(out, "imported 2 users into totp") {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	jsonl := writeFile(t, "more.jsonl", `{"user":"carol","secret":"`+importSecretA+`"}`+"\n")
	if code, out, errOut = runImport(t, "--config", cfg, jsonl); code != 0 || !strings.Contains(out, "imported 1 users") {
		t.Fatalf("JSON Lines import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	sha1 := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	if res := verifyImported(t, cfg, "alice", importSecretA, sha1); res.Outcome != sdk.Allow {
		t.Errorf("alice: %+v, want allow", res)
	}
	if res := verifyImported(t, cfg, "carol", importSecretA, sha1); res.Outcome != sdk.Allow {
		t.Errorf("carol: %+v, want allow", res)
	}
	opts := totp.ValidateOpts{Period: 60, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA256}
	if res := verifyImported(t, cfg, "bob", importSecretB, opts); res.Outcome != sdk.Allow {
		t.Errorf("bob (8 digits, 60 s, SHA256): %+v, want allow", res)
	}
}

// TestImportCommandRefusesBadLines: a bad line anywhere stops the import
// before anything is written, naming the line and never the secret.
func TestImportCommandRefusesBadLines(t *testing.T) {
	cfg := writeConfig(t, pluginCopy(t), totpClients)
	short := "GEZDGNBVGY3TQOJQ" // 80 bits, as some systems issue
	for _, tc := range []struct {
		name, text, want string
	}{
		{"80-bit secret", "alice," + importSecretA + "\nbob," + short + "\n", "line 2: secret is 10 bytes (80 bits)"},
		{"not base32", "alice," + importSecretA + "\nbob," + importSecretA[:20] + "01890189\n", "line 2: secret is not base32"},
		{"columns swapped", importSecretA + ",alice\n", "line 1: secret is"},
		{"user twice", "alice," + importSecretA + "\nbob," + importSecretA + "\nalice," + importSecretB + "\n", `line 3: user "alice" appears again (first on line 1)`},
		{"bad digits", "alice," + importSecretA + ",7\n", "line 1: digits is not 6 or 8"},
		{"bad user", "al\x01ice," + importSecretA + "\n", "user id must contain only printable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runImport(t, "--config", cfg, writeFile(t, "users.csv", tc.text))
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing was imported") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, out, errOut, tc.want)
			}
			for _, s := range []string{importSecretA, importSecretA[:16], importSecretB[:16], short} {
				if strings.Contains(errOut+out, s) {
					t.Errorf("output quotes a secret: %q %q", out, errOut)
				}
			}
		})
	}
	// Nothing of those files was written: alice imports cleanly now.
	if code, out, errOut := runImport(t, "--config", cfg, writeFile(t, "ok.csv", "alice,"+importSecretA+"\n")); code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestImportListsEveryBadLine: one pass names every bad line of a file
// (CSV and JSON Lines), up to 100, and writes nothing.
func TestImportListsEveryBadLine(t *testing.T) {
	cfg := writeConfig(t, pluginCopy(t), totpClients)
	good := func(i int) string { return fmt.Sprintf("user%d,%s\n", i, importSecretA) }
	var many strings.Builder
	for i := range 150 {
		fmt.Fprintf(&many, "user%d,not-base32!\n", i)
	}
	tests := []struct {
		name, file, text string
		want             []string
		wantNot          string
	}{
		{"csv", "users.csv", good(1) + "bob,GEZDGNBVGY3TQOJQ\n" + good(3) + "carol\n" + good(5) + "dan," + importSecretA + ",7\n" + "user1," + importSecretB + "\n",
			[]string{"4 bad line(s)", "line 2: secret is 10 bytes", "line 4: 1 fields", "line 6: digits is not 6 or 8", `line 7: user "user1" appears again`}, "the check stopped"},
		{"jsonl", "users.jsonl", `{"user":"a","secret":"` + importSecretA + `"}` + "\n{nope\n" + `{"user":"b","secret":"` + importSecretA + `","extra":1}` + "\n",
			[]string{"2 bad line(s)", "line 2: not valid JSON", "line 3: unknown field"}, "the check stopped"},
		{"capped at 100", "many.csv", many.String(), []string{"100 bad line(s) (the first 100; the check stopped there)", "line 100: ", "nothing was imported"}, "line 101:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runImport(t, "--config", cfg, writeFile(t, tt.file, tt.text))
			if code != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, tt.wantNot) || strings.Contains(errOut, importSecretA) {
				t.Errorf("stderr says %q or quotes a secret:\n%s", tt.wantNot, errOut)
			}
		})
	}
	// Nothing was written: user1 imports cleanly now.
	if code, out, errOut := runImport(t, "--config", cfg, writeFile(t, "ok.csv", good(1))); code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
