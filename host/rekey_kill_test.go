package host_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// killedRekeyUsers is enough rows for rekey to still be running after its
// first progress line (twelve pages).
const killedRekeyUsers = 6_000

// TestRekeyKilled: the real `twofactor rekey` process is SIGKILLed after
// its first progress line, in the middle of its run (the kill lands
// wherever the process is: between pages or inside a page's write). No
// row is lost and every one opens under the current or the previous key
// (the doctor's check reads them all); some are still under the previous
// key, which the doctor counts; rekey run again re-seals exactly those,
// and then the new key alone opens every row.
func TestRekeyKilled(t *testing.T) {
	h := startHost(t, totpClients)
	path := h.configPath
	now := h.clock.Now()
	h.stop()
	secrets := importUsers(t, path, killedRekeyUsers)
	setKeys(t, path, key2, key1)

	bin, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "twofactor"), "rekey", "--config", path, "--progress", "500")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "rekey: 500 enrollment(s) read") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("rekey's first line: %q, want its first progress line", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("rekey: %v, want killed mid-run", err)
	}

	_, out, rep := doctor(t, path)
	st, msg, _ := rep.check("encryption_key")
	left := previousRows(msg)
	if st != "warn" || !strings.Contains(msg, fmt.Sprintf("decrypts all %d enrollment(s)", killedRekeyUsers)) || left <= 0 || left >= killedRekeyUsers {
		t.Fatalf("doctor after the kill: want every row opened, some under the previous key:\n%s", out)
	}
	t.Logf("killed after its first page: %d of %d rows left under the previous key", left, killedRekeyUsers)
	code, out, errs := runCLI("rekey", "--config", path, "--progress", "0")
	if want := fmt.Sprintf("re-encrypted %d enrollment(s)", left); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("rekey again: exit %d %q %q, want %q", code, out, errs, want)
	}
	setKeys(t, path, key2)
	if _, out, rep := doctor(t, path); !strings.Contains(out, fmt.Sprintf("decrypts all %d enrollment(s)", killedRekeyUsers)) || !rep.ok("encryption_key") {
		t.Errorf("doctor with the new key alone:\n%s", out)
	}
	for _, i := range []int{0, killedRekeyUsers / 2, killedRekeyUsers - 1} {
		user := fmt.Sprintf("user%05d", i)
		if res, err := verifyAt(path, user, secrets[user], now.Add(30*time.Second)); err != nil || res != "allow" {
			t.Errorf("%s under the new key alone: %q, %v", user, res, err)
		}
	}
}

func (r doctorJSON) ok(name string) bool {
	st, _, _ := r.check(name)
	return st == "ok"
}

var previousRowsRE = regexp.MustCompile(`(\d+) enrollment\(s\) still encrypted under a previous key`)

// previousRows is the doctor's count of rows under a previous key, -1 if
// msg has none.
func previousRows(msg string) int {
	m := previousRowsRE.FindStringSubmatch(msg)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// importUsers enrolls n users (user00000, ...) with `twofactor import`,
// each with a secret derived from its name, and returns their secrets.
func importUsers(t *testing.T, path string, n int) map[string]string {
	t.Helper()
	secrets := make(map[string]string, n)
	var b strings.Builder
	for i := range n {
		user := fmt.Sprintf("user%05d", i)
		sum := sha256.Sum256([]byte("rekey killed " + user))
		secrets[user] = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
		fmt.Fprintf(&b, "%s,%s\n", user, secrets[user])
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runImport(t, "--config", path, file); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	return secrets
}
