//go:build linux && cgo

package main

/*
#include <stdlib.h>
#include <sys/prctl.h>

// A constructor of the executable: it runs on the main thread before the
// Go runtime starts (cgo links the command externally, with the C
// start-up code), so sysmon and every later thread inherit the slack. The
// same rule as timerSlack in timerslack.go, which validates the variable
// again and reports a bad one: here a bad value changes nothing.
__attribute__((constructor)) static void twofactor_timer_slack(void) {
	unsigned long ns = 1000000UL;
	const char *v = getenv("TF_TIMERSLACK");
	if (v != NULL && *v != '\0') {
		char *end;
		if (*v < '0' || *v > '9') return;
		ns = strtoul(v, &end, 10);
		if (*end != '\0' || ns == 0 || ns > 10000000UL) return;
	} else if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != 50000) {
		return;
	}
	prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
}
*/
import "C"

// setTimerSlack only validates TF_TIMERSLACK: the constructor above has
// applied it.
func setTimerSlack() error {
	_, _, err := timerSlack(kernelTimerSlack)
	return err
}
