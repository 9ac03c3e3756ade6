package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binary builds the real provider binaries these tests start: the
// conformance kit's good provider (this SDK) and the same provider as an
// SDK without the side channel serves it.
func binary(t *testing.T, name string) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "sdkplugin-"); binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../providertest/testdata/good", "./testdata/oldsdk")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	if addr := os.Getenv(envIntruder); addr != "" {
		os.Exit(intrude(addr)) // this process is an intruder test's second process
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// launch starts bin as the host does (Prepare, NewClient, Dispense) and
// returns its Provider and Launch; before, if not nil, runs between
// Prepare and the start.
func launch(t *testing.T, bin string, logs *syncBuffer, before func(*Launch)) (sdk.Provider, *Launch, *goplugin.Client) {
	t.Helper()
	l := Prepare(exec.Command(bin), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}))
	if before != nil {
		before(l)
	}
	c := goplugin.NewClient(l.Config)
	t.Cleanup(func() { c.Kill(); l.Close() })
	p, err := l.Dispense(c)
	if err != nil {
		t.Fatal(err)
	}
	return p, l, c
}

// answered reports whether err is the provider's own answer (the fake
// refuses an empty state), not a transport failure.
func answered(err error) bool {
	return err == nil || sdk.KindOf(err) != "" && !errors.Is(err, ErrUnreachable)
}

// TestLaunch: which transport Verify takes with a real plugin process,
// and that it answers either way, with the socket at an abstract name
// (Linux) and at a path in a private directory (elsewhere); nothing is
// left in the temporary directory once the plugin stopped.
func TestLaunch(t *testing.T) {
	tests := []struct {
		name     string
		bin      string
		switchOf string
		squat    bool // this test process listens on the socket first
		wantFast bool
		wantLog  string
	}{
		{"this SDK: side channel", "good", "", false, true, ""},
		{"switched off: gRPC", "good", "off", false, false, ""},
		{"switched off, any case", "good", "OFF", false, false, ""},
		{"an SDK without it: gRPC", "oldsdk", "", false, false, "offers no Verify side channel"},
		// The plugin's listen fails (the name is taken), and the host's
		// check of the listener's pid refuses the squatter.
		{"socket served by another process: refused, gRPC", "good", "", true, false, "fast path refused"},
	}
	for _, mode := range socketModes(t) {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				bin := binary(t, tt.bin) // before TMPDIR moves: the binaries outlive this test
				mode.set(t)
				tmp := shortDir(t)
				t.Setenv("TMPDIR", tmp)
				t.Setenv(EnvFastPath, tt.switchOf)
				var logs syncBuffer
				squatted := make(chan struct{}, 8)
				p, l, c := launch(t, bin, &logs, func(l *Launch) {
					if tt.squat {
						squat(t, l.sock, squatted)
					}
				})
				if got := FastPath(p); got != tt.wantFast {
					t.Errorf("FastPath = %v, want %v", got, tt.wantFast)
				}
				if tt.squat {
					select {
					case <-squatted: // the host's probe reached it, and refused it
					case <-time.After(10 * time.Second):
						t.Error("the host's probe never reached the squatter")
					}
				}
				if tt.wantFast {
					p.(*client).rpc = noGRPC{t: t} // a fallback would fail the test
				}
				if _, err := p.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "123456"}); !answered(err) {
					t.Fatalf("Verify: %v", err)
				}
				if tt.wantLog != "" && logs.count(tt.wantLog) != 1 {
					t.Errorf("log has %q %d times, want once:\n%s", tt.wantLog, logs.count(tt.wantLog), logs.String())
				}
				if strings.Contains(logs.String(), "123456") {
					t.Error("the code reached the log")
				}
				on := tt.switchOf == ""
				if (l.sock != "") != on || on && strings.HasPrefix(l.sock, "@") != mode.abstract ||
					on && !mode.abstract && filepath.Dir(l.sock) != l.dir {
					t.Errorf("socket %q, directory %q with the switch at %q", l.sock, l.dir, tt.switchOf)
				}
				// go-plugin's own socket is in the launch's directory, not
				// loose in TMPDIR where a crash would leave it.
				if socks, _ := filepath.Glob(filepath.Join(l.dir, "plugin*")); l.dir == "" || len(socks) != 1 {
					t.Errorf("go-plugin's sockets in %q: %v; want one", l.dir, socks)
				}
				c.Kill()
				l.Close()
				if left, _ := os.ReadDir(tmp); len(left) != 0 {
					t.Errorf("left in TMPDIR after the plugin stopped: %v", left)
				}
			})
		}
	}
}

// squat listens on addr before the plugin starts, as another process of
// this user could, and serves it as a plugin would for this process; it
// signals each connection accepted. A Verify must never reach it.
func squat(t *testing.T, addr string, accepted chan<- struct{}) {
	t.Helper()
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	counted := &countingListener{Listener: ln, accepted: accepted}
	go fastpath.Serve(counted, os.Getpid(), func(context.Context, *pb.VerifyRequest) (*pb.VerifyResponse, error) {
		t.Error("a Verify reached the squatter")
		return nil, errors.New("squatter")
	}, hclog.NewNullLogger())
}

// countingListener signals each connection it accepts.
type countingListener struct {
	net.Listener
	accepted chan<- struct{}
}

func (c *countingListener) Accept() (net.Conn, error) {
	nc, err := c.Listener.Accept()
	if err == nil {
		select {
		case c.accepted <- struct{}{}:
		default:
		}
	}
	return nc, err
}

// foreignProvider is a Provider of another package's making, as a host
// that replaced Launch.Config's plugin set would get from go-plugin.
type foreignProvider struct{ sdk.Provider }

// TestLaunchForeignProvider: a Client whose plugin set hands out another
// Provider type than this package's client gets a clear error from
// Launch.Dispense when the plugin offers the side channel, never a panic.
func TestLaunchForeignProvider(t *testing.T) {
	if !fastpath.Supported {
		t.Skip("no side channel on this OS: Dispense never attaches one")
	}
	t.Setenv(EnvFastPath, "")
	l := Prepare(exec.Command(binary(t, "good")), hclog.NewNullLogger())
	l.Config.VersionedPlugins = wire.Sets(nil, func(pb.ProviderServiceClient, int) any { return foreignProvider{} })
	c := goplugin.NewClient(l.Config)
	defer func() { c.Kill(); l.Close() }()
	p, err := l.Dispense(c)
	if err == nil || !strings.Contains(err.Error(), "foreignProvider") || !strings.Contains(err.Error(), "VersionedPlugins") {
		t.Fatalf("Dispense = %v, %v; want an error naming the foreign type and the cause", p, err)
	}
	if p != nil {
		t.Errorf("Dispense returned a Provider (%T) with its error", p)
	}
}
