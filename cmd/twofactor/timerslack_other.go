//go:build !linux

package main

// setTimerSlack validates TF_TIMERSLACK; timer slack is a Linux setting.
func setTimerSlack() error {
	_, _, err := timerSlack(kernelTimerSlack)
	return err
}
