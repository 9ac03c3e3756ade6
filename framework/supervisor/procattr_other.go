//go:build !linux

package supervisor

import (
	"os"
	"os/exec"
)

// setParentDeathSignal has no portable equivalent outside Linux; there the
// host's graceful shutdown is what stops plugins.
func setParentDeathSignal(*exec.Cmd) {}

// killGroup kills the plugin process itself; without process groups its
// children are not reached.
func killGroup(pid int) {
	if proc, err := os.FindProcess(pid); err == nil {
		_ = proc.Kill()
	}
}
