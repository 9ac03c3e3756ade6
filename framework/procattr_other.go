//go:build !linux

package framework

import "os/exec"

// setParentDeathSignal has no portable equivalent outside Linux; there the
// host's graceful shutdown is what stops plugins.
func setParentDeathSignal(*exec.Cmd) {}
