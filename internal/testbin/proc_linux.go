package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Processes returns the pids of live processes whose executable is in dir,
// by reading /proc. Zombies are left out: they are dead, only not yet
// reaped.
func Processes(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Dir(strings.TrimSuffix(exe, " (deleted)")) != filepath.Clean(dir) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil && processState(string(stat)) == "Z" {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func processState(stat string) string {
	// The command name is in parentheses and may contain spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+3 > len(stat) {
		return ""
	}
	return stat[i+2 : i+3]
}

// WaitExit blocks until process pid has exited (it may still await
// reaping), using a pidfd: an event, not a polling loop.
func WaitExit(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// OnlyProcess returns the pid of the one live process whose executable is
// in dir, and fails tb if there is not exactly one.
func OnlyProcess(tb testing.TB, dir string) int {
	tb.Helper()
	pids := Processes(dir)
	if len(pids) != 1 {
		tb.Fatalf("processes of %s: %v, want one", dir, pids)
	}
	return pids[0]
}

// Stop SIGSTOPs pid and returns once the kernel shows it stopped (a
// signal is delivered asynchronously: the process may answer one more
// request otherwise). It SIGCONTs the process when tb ends, so a failing
// test never leaves a stopped process behind.
func Stop(tb testing.TB, pid int) {
	tb.Helper()
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Kill(pid, unix.SIGCONT) })
	stat := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			tb.Fatalf("process %d after SIGSTOP: %v", pid, err)
		}
		if st := processState(string(b)); st == "T" || st == "t" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("process %d not stopped 5s after SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// AbstractBound reports whether an abstract unix socket name ("@..." in
// the net package's syntax) is bound in this network namespace, from
// /proc/net/unix.
func AbstractBound(tb testing.TB, name string) bool {
	tb.Helper()
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 8 && f[7] == name {
			return true
		}
	}
	return false
}

// Getenv returns the value of name in process pid's initial environment
// ("" if absent), from /proc.
func Getenv(tb testing.TB, pid int, name string) string {
	tb.Helper()
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
