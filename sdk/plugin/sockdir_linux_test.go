package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestSweepStale: the first launch of a host removes the gRPC socket
// directories of hosts that are gone (their pid names no process), and
// keeps those of live processes (its own, its parent's), anything named
// otherwise, and a file that only looks like one.
func TestSweepStale(t *testing.T) {
	tmp := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, dir bool) {
		p := filepath.Join(tmp, name)
		if !dir {
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		// A socket file stands in for what a killed plugin left.
		if err := os.WriteFile(filepath.Join(p, "plugin123"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dead := fmt.Sprintf("%s%d-1", socketDirPrefix, gone.Process.Pid)
	keep := []string{
		fmt.Sprintf("%s%d-2", socketDirPrefix, os.Getpid()),
		fmt.Sprintf("%s%d-3", socketDirPrefix, os.Getppid()),
		"twofactor-verify-4",
		socketDirPrefix + "notapid-5",
	}
	mk(dead, true)
	for _, k := range keep {
		mk(k, true)
	}
	file := fmt.Sprintf("%s%d-6", socketDirPrefix, gone.Process.Pid)
	mk(file, false)
	keep = append(keep, file)

	sweepStale(tmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(left)
	slices.Sort(keep)
	if !slices.Equal(left, keep) {
		t.Errorf("after the sweep: %v; want %v (%s removed)", left, keep, dead)
	}
}
