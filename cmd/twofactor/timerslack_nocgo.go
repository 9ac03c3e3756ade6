//go:build linux && !cgo

package main

import (
	"fmt"
	"syscall"
)

const (
	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// setTimerSlack sets the slack on every thread the runtime has started
// (sysmon among them), which later threads inherit. Without cgo there is
// no constructor to run before the runtime, but AllThreadsSyscall works.
func setTimerSlack() error {
	inherited, _, _ := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	ns, set, err := timerSlack(uint64(inherited))
	if err != nil || !set {
		return err
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(ns), 0); e != 0 {
		return fmt.Errorf("%s: prctl(PR_SET_TIMERSLACK): %w", timerSlackEnv, e)
	}
	return nil
}
