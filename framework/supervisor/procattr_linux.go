package supervisor

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill a plugin when the host dies,
// even by SIGKILL; go-plugin alone leaves such plugins orphaned. Its own
// process group keeps a Ctrl-C or a group-wide SIGTERM from killing the
// plugin before the host has finished its in-flight requests; the host
// stops its plugins itself (and killGroup can then reach anything the
// plugin forked).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killGroup SIGKILLs the plugin's process group (its pid: see Setpgid),
// which works on a stopped process too.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
