package plugin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk/internal/fastpath"
)

// socketMode is where Prepare puts a plugin's socket.
type socketMode struct {
	name     string
	abstract bool
	set      func(t *testing.T) // makes Prepare use this mode until t ends
}

// socketModes are the modes this machine has: an abstract name where
// that works (Linux), and a path in a private directory, which Prepare
// takes where it does not.
func socketModes(t *testing.T) []socketMode {
	force := func(v bool) func(t *testing.T) {
		return func(t *testing.T) {
			was := abstractSockets
			abstractSockets = func() bool { return v }
			t.Cleanup(func() { abstractSockets = was })
		}
	}
	modes := []socketMode{{"directory", false, force(false)}}
	if fastpath.Abstract() {
		modes = append(modes, socketMode{"abstract", true, force(true)})
	} else {
		t.Log("no abstract unix sockets here: the directory mode only")
	}
	return modes
}

// TestLaunchAddress: the socket address the plugin is told. An abstract
// name is NamePrefix and 128 bits of hex, new for each launch, and
// nothing is made on disk; a path is in a directory only the host's user
// can enter.
func TestLaunchAddress(t *testing.T) {
	if !fastpath.Supported {
		t.Skip("no side channel on this OS")
	}
	abstractName := regexp.MustCompile(`^@` + fastpath.NamePrefix + `[0-9a-f]{32}$`)
	for _, mode := range socketModes(t) {
		t.Run(mode.name, func(t *testing.T) {
			mode.set(t)
			tmp := shortDir(t)
			t.Setenv("TMPDIR", tmp)
			t.Setenv(EnvFastPath, "")
			var socks []string
			for range 2 {
				cmd := exec.Command("true")
				l := Prepare(cmd, hclog.NewNullLogger())
				defer l.Close()
				if !slices.Contains(cmd.Env, fastpath.EnvSocket+"="+l.sock) {
					t.Fatalf("socket %q, env %q", l.sock, cmd.Env)
				}
				socks = append(socks, l.sock)
				if mode.abstract {
					if !abstractName.MatchString(l.sock) {
						t.Errorf("socket %q; want an abstract name", l.sock)
					}
					continue
				}
				fi, err := os.Stat(l.dir)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o700 || filepath.Dir(l.dir) != tmp || filepath.Dir(l.sock) != l.dir {
					t.Errorf("directory %s mode %v, socket %s; want 0700 in %s with the socket in it", l.dir, fi.Mode().Perm(), l.sock, tmp)
				}
			}
			if socks[0] == socks[1] {
				t.Errorf("two launches share the socket %q", socks[0])
			}
			// In TMPDIR: each launch's private directory, and nothing else
			// (an abstract name is no file; a socket path is in it).
			entries, _ := os.ReadDir(tmp)
			if len(entries) != 2 || !strings.HasPrefix(entries[0].Name(), socketDirPrefix) || !strings.HasPrefix(entries[1].Name(), socketDirPrefix) {
				t.Errorf("in TMPDIR: %v; want the two launches' private directories", entries)
			}
		})
	}
}

// envIntruder, set to a socket address, makes this test binary an
// intruder (TestMain): it dials the address, sends a hello and waits for
// one.
const envIntruder = "TF_TEST_FASTPATH_INTRUDER"

// What an intruder found, as its exit code.
const (
	intruderClosed   = 0 // the plugin closed the connection without a byte
	intruderAnswered = 1 // the plugin answered the hello
	intruderNoAnswer = 2 // neither, within 10 s
	intruderNoDial   = 3 // nothing to connect to
)

func intrude(addr string) int {
	nc, err := net.DialTimeout("unix", addr, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return intruderNoDial
	}
	defer nc.Close()
	c := fastpath.NewConn(nc)
	c.WriteHello() // a write may already fail: the read says what happened
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	v, err := c.ReadHello()
	switch {
	case err == nil:
		fmt.Fprintln(os.Stderr, "the plugin answered, side-channel version", v)
		return intruderAnswered
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return intruderClosed
	}
	fmt.Fprintln(os.Stderr, "read:", err)
	return intruderNoAnswer
}
