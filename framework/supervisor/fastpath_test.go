package supervisor_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// socketDir is the Verify side channel's directory a plugin process was
// started with ("" for none), from its initial environment.
func socketDir(t *testing.T, pid int) string {
	t.Helper()
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := strings.CutPrefix(string(kv), "TWOFACTOR_VERIFY_SOCKET="); ok {
			return filepath.Dir(v)
		}
	}
	return ""
}

// TestFastPathFaults: real faults of a plugin whose Verify goes over the
// side channel are handled exactly as over gRPC. SIGSTOP: the call ends
// at its deadline with KindTimeout, the plugin is found hung, killed and
// restarted. SIGKILL: a burst of simultaneous calls all get answers
// through one restart. Either way the new process has a side channel of
// its own and the old one's directory is gone.
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
			dir := socketDir(t, pid)
			if st := p.Status(); st.FastPath != fast || (dir != "") != fast {
				t.Fatalf("FastPath = %v, socket dir %q; want side channel %v", st.FastPath, dir, fast)
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
				nextDir := socketDir(t, next)
				if nextDir == "" || nextDir == dir {
					t.Errorf("restarted plugin's side channel %q, the old one's %q: want a new one", nextDir, dir)
				}
				eventually(t, 5*time.Second, "the old side channel's directory removed", func() bool {
					_, err := os.Stat(dir)
					return errors.Is(err, os.ErrNotExist)
				})
			}
		})
	}
}
