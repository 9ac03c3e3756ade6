package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
)

// TestLaunchRefusesIntruder: anyone can connect to an abstract socket, so
// the plugin's SO_PEERCRED check is what keeps it to its host. Real second
// processes (this test binary again) of this user and, when the test runs
// as root, of another user, dial the plugin's name: each is closed without
// an answer, and the host's own Verify still takes the side channel.
func TestLaunchRefusesIntruder(t *testing.T) {
	if !fastpath.Supported || !fastpath.Abstract() {
		t.Skip("no abstract unix sockets here")
	}
	bin := binary(t, "good")
	t.Setenv(EnvFastPath, "")
	for _, mode := range socketModes(t) {
		if mode.abstract {
			mode.set(t)
		}
	}
	var logs syncBuffer
	p, l, _ := launch(t, bin, &logs, nil)
	if !FastPath(p) {
		t.Fatalf("no side channel at %q:\n%s", l.sock, logs.String())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		uid  int // -1: this user
	}{
		{"another process of this user", -1},
		{"another user's process", 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(self)
			if tt.uid >= 0 {
				if os.Getuid() != 0 {
					t.Skip("needs root to run a process as another user")
				}
				cmd = exec.Command(worldExecutable(t, self))
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(tt.uid), Gid: uint32(tt.uid)}}
			}
			cmd.Env = append(os.Environ(), envIntruder+"="+l.sock)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != intruderClosed {
				t.Errorf("intruder exit %d (want %d: closed without an answer): %v\n%s", code, intruderClosed, err, out)
			}
		})
	}
	p.(*client).rpc = noGRPC{t: t}
	if _, err := p.Verify(t.Context(), sdk.VerifyRequest{User: sdk.User{ID: "u"}}); !answered(err) {
		t.Fatalf("the host's Verify after the intruders: %v", err)
	}
}

// worldExecutable copies the binary at path into a directory any user
// can enter and returns the copy (go test's build directory is 0700).
func worldExecutable(t *testing.T, path string) string {
	t.Helper()
	dir := shortDir(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "intruder")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return copyPath
}
