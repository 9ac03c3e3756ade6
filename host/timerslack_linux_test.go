package host_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
)

const prSetTimerSlack = 29 // PR_SET_TIMERSLACK

// threadSlacks is the timer slack of every thread of pid, by thread id.
func threadSlacks(t *testing.T, pid int) map[string]uint64 {
	t.Helper()
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, tid := range tids {
		b, err := os.ReadFile(filepath.Join("/proc", tid.Name(), "timerslack_ns"))
		if os.IsNotExist(err) {
			continue // the thread ended meanwhile
		}
		if os.IsPermission(err) {
			t.Skipf("reading another process's timerslack_ns needs ptrace rights: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[tid.Name()], err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// children is the processes pid started, from its threads' children
// lists. Serving means its providers are running.
func children(t *testing.T, pid int) []int {
	t.Helper()
	lists, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(b)) {
			kid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, kid)
		}
	}
	return out
}

// withThreadSlack runs f on a thread whose timer slack is ns; the thread
// is not reused.
func withThreadSlack(ns uint64, f func() error) error {
	done := make(chan error)
	go func() {
		// Not unlocked: the thread ends with the goroutine, and its
		// slack with it.
		runtime.LockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(ns), 0); e != 0 {
			done <- fmt.Errorf("prctl(PR_SET_TIMERSLACK): %w", e)
			return
		}
		done <- f()
	}()
	return <-done
}

// TestTimerSlack: every thread of the host, sysmon among them, and of the
// provider plugins it starts runs with the timer slack cmd/twofactor sets
// before the Go runtime starts (1 ms unless TF_TIMERSLACK says otherwise
// or the host was started with a slack of its own), and a bad
// TF_TIMERSLACK stops the command with a message.
func TestTimerSlack(t *testing.T) {
	// Each case starts the host from a thread with a known slack: the
	// kernel's default (50 µs) or one of a parent's choosing.
	cases := []struct {
		name            string
		env             string
		inherited, want uint64
	}{
		{name: "default", inherited: 50_000, want: 1_000_000},
		{name: "from the environment", env: "TF_TIMERSLACK=250000", inherited: 50_000, want: 250_000},
		{name: "zero keeps the inherited slack", env: "TF_TIMERSLACK=0", inherited: 60_000, want: 60_000},
		{name: "an inherited slack is kept", inherited: 300_000, want: 300_000},
		{name: "the environment wins over the inherited slack", env: "TF_TIMERSLACK=400000", inherited: 300_000, want: 400_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			cmd, _ := startProcessEnv(t, writeConfig(t, pluginCopy(t), totpClients), env, func(cmd *exec.Cmd) error {
				return withThreadSlack(tc.inherited, cmd.Start)
			})
			host := threadSlacks(t, cmd.Process.Pid)
			var plugins int
			for _, pid := range children(t, cmd.Process.Pid) {
				for tid, ns := range threadSlacks(t, pid) {
					plugins++
					if ns != tc.want {
						t.Errorf("plugin %d thread %s: timer slack %d ns, want %d", pid, tid, ns, tc.want)
					}
				}
			}
			if len(host) < 2 || plugins == 0 {
				t.Fatalf("%d host threads, %d plugin threads: want the runtime's threads of both", len(host), plugins)
			}
			for tid, ns := range host {
				if ns != tc.want {
					t.Errorf("host thread %s: timer slack %d ns, want %d", tid, ns, tc.want)
				}
			}
		})
	}
	t.Run("a bad value", func(t *testing.T) {
		bin, err := testbin.Dir()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"x", "-1", "1ms", "10000001"} {
			cmd := exec.Command(filepath.Join(bin, "twofactor"), "version")
			cmd.Env = append(os.Environ(), "TF_TIMERSLACK="+v)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "TF_TIMERSLACK=") {
				t.Errorf("TF_TIMERSLACK=%s: exit %d (%v), output %q; want 1 and a message naming the variable", v, code, err, out)
			}
		}
	})
}
