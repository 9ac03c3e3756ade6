package host_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIFlagsAnywhere: flags may follow the operands, and "--" ends the
// flags (issue 19: `reset carol totp --config F` said "no config file
// given").
func TestCLIFlagsAnywhere(t *testing.T) {
	path := writeConfig(t, pluginCopy(t), totpClients)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unlock, flag last", []string{"unlock", "carol", "--config", path}, "ended carol's lockout"},
		{"unlock, flag first", []string{"unlock", "--config", path, "carol"}, "ended carol's lockout"},
		{"unlock, -- before an operand that starts with a dash", []string{"unlock", "--config", path, "--", "-carol"}, "ended -carol's lockout"},
		{"digest, flag last", []string{"digest", "totp", "--config=" + path}, "sha256: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(tt.args...)
			if code != 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
			}
		})
	}
	// reset with its flags last reaches the store: the user has no
	// enrollment, which is the answer, not a missing --config.
	code, _, stderr := runCLI("reset", "carol", "totp", "--config", path)
	if code != 1 || strings.Contains(stderr, "no config file") || !strings.Contains(stderr, "not_found") {
		t.Errorf("reset with flags last: exit %d, stderr %q", code, stderr)
	}
	// No --config is a usage error that says so.
	if code, _, stderr := runCLI("reset", "carol", "totp"); code != 2 || !strings.Contains(stderr, "--config is missing") {
		t.Errorf("no --config: exit %d, stderr %q", code, stderr)
	}
	// Too many operands is a usage error (exit 2) that shows the synopsis.
	if code, _, stderr := runCLI("unlock", "carol", "dave", "--config", path); code != 2 || !strings.Contains(stderr, "usage: twofactor unlock --config FILE USER") {
		t.Errorf("two users: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIHelp: every command's --help exits 0 and says what its operands
// are; an unknown flag exits 2 and points to --help.
func TestCLIHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"reset", "--help"}, []string{"Usage: twofactor reset --config FILE USER PROVIDER", "Arguments:", "USER ", "PROVIDER ", "-config"}},
		{[]string{"reset", "carol", "-h"}, []string{"Usage: twofactor reset"}},
		{[]string{"unlock", "--help"}, []string{"Arguments:", "USER "}},
		{[]string{"digest", "--help"}, []string{"PROVIDER ", "twofactor-provider-PROVIDER"}},
		{[]string{"import", "--help"}, []string{"SECRETS-FILE ", "-dry-run", "-batch", "-skip-existing"}},
		{[]string{"serve", "--help"}, []string{"-listen", "TWOFACTOR_LISTEN"}},
		{[]string{"rekey", "--help"}, []string{"-progress"}},
		{[]string{"init", "--help"}, []string{"-plugins-dir", "-pin"}},
		{[]string{"doctor", "--help"}, []string{"-json"}},
		{[]string{"providers", "--help"}, []string{"-config"}},
		{[]string{"keygen", "--help"}, []string{"Usage: twofactor keygen"}},
		{[]string{"version", "--help"}, []string{"Usage: twofactor version"}},
		{[]string{"help", "reset"}, []string{"Arguments:", "PROVIDER "}},
		{[]string{"--help"}, []string{"twofactor reset --config FILE USER PROVIDER", "Flags may come before or after"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help does not say %q:\n%s", w, out)
				}
			}
		})
	}
	if code, _, stderr := runCLI("reset", "--confg", "x"); code != 2 || !strings.Contains(stderr, "twofactor reset --help") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}
}

// TestVersionNamesRevision: a binary built as the Makefile builds it names
// the release and the commit it was built from. (Go's build info carries
// vcs.revision only in a plain clone, not in a worktree or under
// -buildvcs=false, so the Makefile stamps it from git.)
func TestVersionNamesRevision(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git checkout to compare with: %v", err)
	}
	ldflags, err := exec.Command("make", "-s", "--no-print-directory", "-C", "..", "print-LDFLAGS").Output()
	if err != nil {
		t.Fatalf("make print-LDFLAGS: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "twofactor")
	build := exec.Command("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin, "../cmd/twofactor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "(revision " + strings.TrimSpace(string(head))
	if !strings.HasPrefix(string(out), "twofactor ") || strings.HasPrefix(string(out), "twofactor dev ") ||
		!strings.Contains(string(out), want) {
		t.Errorf("version = %q, want a release and %q", out, want)
	}
	// Neither stamp nor build info (a test binary): it says so.
	if code, out, _ := runCLI("version"); code != 0 || !strings.Contains(out, "twofactor dev (revision unknown") {
		t.Errorf("unstamped version: %d %q", code, out)
	}
}

// busyPort holds a 127.0.0.1 port for the test and returns its address.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestServeBusyPort: a port in use stops serve with the ways out; under
// log.format: json the fatal error is a JSON line too, for a refused
// config as for a busy port; doctor reports the busy port.
func TestServeBusyPort(t *testing.T) {
	plugins := pluginCopy(t)
	addr := busyPort(t)
	text := writeConfig(t, plugins, totpClients)
	code, _, stderr := runCLI("serve", "--config", text, "--listen", addr)
	for _, want := range []string{addr, "in use", "--listen ADDR", "TWOFACTOR_LISTEN"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("busy port: exit %d, stderr does not say %q:\n%s", code, want, stderr)
		}
	}

	jsonCfg := writeConfig(t, plugins, totpClients+"log: {format: json}\n")
	tests := []struct {
		name string
		args []string
		env  string // TWOFACTOR_LOG__FORMAT
	}{
		{"busy port", []string{"serve", "--config", jsonCfg, "--listen", addr}, ""},
		{"refused config", []string{"serve", "--config", writeConfig(t, plugins, totpClients+"log: {format: json}\nprovders: {}\n")}, ""},
		{"format from the environment", []string{"serve", "--config", writeConfig(t, plugins, totpClients+"listne: x\n")}, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("TWOFACTOR_LOG__FORMAT", tt.env)
			}
			code, _, stderr := runCLI(tt.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			var line map[string]any
			if code != 1 || json.Unmarshal([]byte(lines[len(lines)-1]), &line) != nil || line["@level"] != "error" {
				t.Fatalf("exit %d, last stderr line is not a JSON error: %q", code, stderr)
			}
			if msg, _ := line["error"].(string); msg == "" {
				t.Errorf("no error in %v", line)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "{") {
					t.Errorf("a plain-text line under log.format json: %q", l)
				}
			}
		})
	}

	// doctor reads TWOFACTOR_LISTEN as serve would.
	t.Setenv("TWOFACTOR_LISTEN", addr)
	_, _, rep := doctor(t, writeConfig(t, plugins, totpClients))
	if st, msg, fix := rep.check("listen"); st != "fail" || !strings.Contains(msg, addr) || !strings.Contains(fix, "TWOFACTOR_LISTEN") {
		t.Errorf("doctor on a busy port: %q %q %q", st, msg, fix)
	}
	// A twofactor host already serving there is a warning: most likely
	// the one the doctor is run beside.
	h := startHost(t, totpClients)
	t.Setenv("TWOFACTOR_LISTEN", strings.TrimPrefix(h.url, "http://"))
	code, _, rep = doctor(t, writeConfig(t, plugins, totpClients))
	if st, msg, _ := rep.check("listen"); code != 0 || st != "warn" || !strings.Contains(msg, "running twofactor host") {
		t.Errorf("doctor beside a running host: exit %d, %q %q", code, st, msg)
	}
}
