//go:build !linux

package providertest

import "os/exec"

// setParentDeathSignal does nothing where there is no parent-death signal.
func setParentDeathSignal(*exec.Cmd) {}
