package supervisor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// socketAddr is the Verify side channel's socket address a plugin process
// was started with ("" for none).
func socketAddr(t *testing.T, pid int) string {
	t.Helper()
	return testbin.Getenv(t, pid, "TWOFACTOR_VERIFY_SOCKET")
}

// socketGone reports whether nothing is left of a side channel's socket:
// an abstract name is no longer bound, a path's directory is removed.
func socketGone(t *testing.T, addr string) bool {
	if strings.HasPrefix(addr, "@") {
		return !testbin.AbstractBound(t, addr)
	}
	_, err := os.Stat(filepath.Dir(addr))
	return errors.Is(err, os.ErrNotExist)
}

// TestFastPathFaults: real faults of a plugin whose Verify goes over the
// side channel are handled exactly as over gRPC. SIGSTOP: the call ends
// at its deadline with KindTimeout, the plugin is found hung, killed and
// restarted. SIGKILL: a burst of simultaneous calls all get answers
// through one restart. Either way the new process has a side channel of
// its own and nothing is left of the old one's socket.
func TestFastPathFaults(t *testing.T) {
	tests := []struct {
		name      string
		transport string // TF_PLUGIN_FASTPATH
		fault     syscall.Signal
	}{
		{"side channel, SIGSTOP", "", syscall.SIGSTOP},
		{"gRPC, SIGSTOP", "off", syscall.SIGSTOP},
		{"side channel, SIGKILL", "", syscall.SIGKILL},
		{"gRPC, SIGKILL", "off", syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(sdkplugin.EnvFastPath, tt.transport)
			fast := tt.transport == ""
			bin := totpCopy(t)
			p, pid := startTOTP(t, bin)
			addr := socketAddr(t, pid)
			if st := p.Status(); st.FastPath != fast || (addr != "") != fast {
				t.Fatalf("FastPath = %v, socket %q; want side channel %v", st.FastPath, addr, fast)
			}
			if err := verify(p); supervisor.KindOf(err) != 0 {
				t.Fatalf("before the fault: %v", err)
			}

			switch tt.fault {
			case syscall.SIGSTOP:
				stopThenRestarted(t, p, pid)
			case syscall.SIGKILL:
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if err := testbin.WaitExit(pid); err != nil {
					t.Fatal(err)
				}
				const n = 64
				start := make(chan struct{})
				errs := make(chan error, n)
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() { <-start; errs <- verify(p) })
				}
				close(start)
				wg.Wait()
				close(errs)
				for err := range errs {
					if supervisor.KindOf(err) != 0 {
						t.Errorf("call after SIGKILL: %v, want an answer after the restart", err)
					}
				}
				if st := p.Status(); st.Restarts != 1 {
					t.Errorf("restarts = %d, want 1 for the whole burst", st.Restarts)
				}
			}

			if err := testbin.WaitExit(pid); err != nil {
				t.Fatal(err)
			}
			next := testbin.OnlyProcess(t, filepath.Dir(bin))
			if next == pid {
				t.Fatalf("the old process %d still serves", pid)
			}
			if err := verify(p); supervisor.KindOf(err) != 0 {
				t.Fatalf("after restart: %v", err)
			}
			if st := p.Status(); st.FastPath != fast {
				t.Errorf("after restart FastPath = %v, want %v", st.FastPath, fast)
			}
			if fast {
				nextAddr := socketAddr(t, next)
				if nextAddr == "" || nextAddr == addr {
					t.Errorf("restarted plugin's side channel %q, the old one's %q: want a new one", nextAddr, addr)
				}
				eventually(t, 5*time.Second, "the old side channel's socket gone", func() bool { return socketGone(t, addr) })
			}
		})
	}
}
