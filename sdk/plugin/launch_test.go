package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

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
// and that it answers either way.
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
		{"socket served by another process: refused, gRPC", "good", "", true, false, "fast path refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvFastPath, tt.switchOf)
			var logs syncBuffer
			p, l, c := launch(t, binary(t, tt.bin), &logs, func(l *Launch) {
				if !tt.squat {
					return
				}
				ln, err := net.Listen("unix", l.sock)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go fastpath.Serve(ln, os.Getpid(), func(context.Context, *pb.VerifyRequest) (*pb.VerifyResponse, error) {
					t.Error("a Verify reached the squatter")
					return nil, errors.New("squatter")
				}, hclog.NewNullLogger())
			})
			if got := FastPath(p); got != tt.wantFast {
				t.Errorf("FastPath = %v, want %v", got, tt.wantFast)
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
			if (l.dir != "") != (tt.switchOf == "") {
				t.Errorf("side channel directory %q with the switch at %q", l.dir, tt.switchOf)
			}
			c.Kill()
			l.Close()
			if l.dir != "" {
				if _, err := os.Stat(l.dir); !os.IsNotExist(err) {
					t.Errorf("directory %s left after the plugin stopped: %v", l.dir, err)
				}
			}
		})
	}
}

// TestLaunchDirectoryIsPrivate: the socket's directory is the host
// user's alone, and the plugin is told the socket in it.
func TestLaunchDirectoryIsPrivate(t *testing.T) {
	t.Setenv(EnvFastPath, "")
	cmd := exec.Command("true")
	l := Prepare(cmd, hclog.NewNullLogger())
	defer l.Close()
	if !fastpath.Supported {
		t.Skip("no side channel on this OS")
	}
	fi, err := os.Stat(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
	if !strings.HasPrefix(l.sock, l.dir+string(filepath.Separator)) || !slices.Contains(cmd.Env, fastpath.EnvSocket+"="+l.sock) {
		t.Errorf("socket %q, env %q", l.sock, cmd.Env)
	}
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
