package host_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// startProcessWith runs `twofactor serve` on a config file and returns
// once it is serving, with its base URL.
func startProcessWith(t *testing.T, configPath string) (*exec.Cmd, string) {
	t.Helper()
	return startProcessEnv(t, configPath, nil, nil)
}

// startProcessEnv is startProcessWith with env added to the host's
// environment and start, if not nil, doing cmd.Start (on a thread of its
// choosing).
func startProcessEnv(t *testing.T, configPath string, env []string, start func(*exec.Cmd) error) (*exec.Cmd, string) {
	t.Helper()
	cmd, url, _ := startProcessOut(t, configPath, env, start, io.Discard)
	return cmd, url
}

// startProcessOut is startProcessEnv writing every line the host writes to
// its stderr to out, as long as the host runs (so it never blocks on its
// log); drained is closed once the host's stderr is closed and all of it
// written to out.
func startProcessOut(t *testing.T, configPath string, env []string, start func(*exec.Cmd) error, out io.Writer) (cmd *exec.Cmd, url string, drained <-chan struct{}) {
	t.Helper()
	bin, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(filepath.Join(bin, "twofactor"), "serve", "--config", configPath)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, done := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(done)
		serving := regexp.MustCompile(`serving: addr=(\S+)`)
		found := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.Write(append(sc.Bytes(), '\n'))
			if m := serving.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addr <- "http://" + m[1]
			}
		}
		io.Copy(out, stderr) // past a line too long for the scanner: keep draining
		if !found {
			close(addr)
		}
	}()
	url, ok := <-addr
	if !ok {
		<-done
		t.Fatal("host exited before serving")
	}
	return cmd, url, done
}

// TestNoOrphanPlugins: whether the host is stopped politely or killed
// outright, no provider process outlives it, nor anything of its Verify
// side channel: the socket's abstract name is freed by the kernel and
// nothing named twofactor-verify-* is left in the host's TMPDIR (a
// socket directory was, after each SIGKILL, before abstract names).
func TestNoOrphanPlugins(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			// Short: go-plugin's own gRPC socket goes there too.
			tmp, err := os.MkdirTemp("", "tf")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			plugins := pluginCopy(t)
			cmd, url := startProcessEnv(t, writeConfig(t, plugins, totpClients), []string{"TMPDIR=" + tmp}, nil)
			res, err := http.Get(url + "/healthz")
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("healthz: %v %v", res, err)
			}
			res.Body.Close()
			pids := testbin.Processes(plugins)
			if len(pids) != 1 {
				t.Fatalf("plugin processes: %v", pids)
			}
			sock := testbin.Getenv(t, pids[0], "TWOFACTOR_VERIFY_SOCKET")
			if !strings.HasPrefix(sock, "@twofactor-verify-") || !testbin.AbstractBound(t, sock) {
				t.Fatalf("the plugin's side channel %q is not a bound abstract name", sock)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if sig != syscall.SIGKILL && err != nil {
				t.Errorf("host did not exit cleanly on %v: %v", sig, err)
			}
			// After a graceful stop the host has already reaped its plugin;
			// after SIGKILL the kernel's parent-death signal ends it.
			done := make(chan error, 1)
			go func() { done <- testbin.WaitExit(pids[0]) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("plugin %d still running 10s after the host got %v", pids[0], sig)
			}
			if left := testbin.Processes(plugins); len(left) != 0 {
				t.Errorf("orphans: %v", left)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "twofactor-verify-*")); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if testbin.AbstractBound(t, sock) {
				t.Errorf("the side channel's name %s is still bound", sock)
			}
			// go-plugin's gRPC socket went into a directory of the host's
			// own: a graceful stop leaves nothing; a SIGKILL leaves that
			// directory, which the next host's first plugin start removes.
			left, _ := os.ReadDir(tmp)
			stale := fmt.Sprintf("twofactor-plugin-%d-", cmd.Process.Pid)
			if sig != syscall.SIGKILL {
				if len(left) != 0 {
					t.Errorf("left in TMPDIR after %v: %v", sig, left)
				}
				return
			}
			if len(left) != 1 || !strings.HasPrefix(left[0].Name(), stale) {
				t.Fatalf("in TMPDIR after SIGKILL: %v; want the host's gRPC socket directory %s*", left, stale)
			}
			next, _ := startProcessEnv(t, writeConfig(t, plugins, totpClients), []string{"TMPDIR=" + tmp}, nil)
			defer func() { next.Process.Signal(syscall.SIGTERM); next.Wait() }()
			if _, err := os.Stat(filepath.Join(tmp, left[0].Name())); !os.IsNotExist(err) {
				t.Errorf("the killed host's directory %s is still there once the next host runs: %v", left[0].Name(), err)
			}
		})
	}
}

// noOrphans checks that the plugin processes pids, listed in dir before
// their host stopped or died, exit within 10 s, and that no process of dir
// is left.
func noOrphans(t *testing.T, dir string, pids []int, what string) {
	t.Helper()
	if err := waitGone(pids, 10*time.Second); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if left := testbin.Processes(dir); len(left) != 0 {
		t.Errorf("%s: plugin processes left: %v", what, left)
	}
}

// waitGone waits, at most d, for every process in pids to exit (pidfd).
func waitGone(pids []int, d time.Duration) error {
	done := make(chan error, len(pids))
	for _, pid := range pids {
		go func() { done <- testbin.WaitExit(pid) }()
	}
	deadline := time.After(d)
	for range pids {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("plugin processes %v still running %v later", pids, d)
		}
	}
	return nil
}
