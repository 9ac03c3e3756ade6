package main

import (
	"fmt"
	"os"
	"strconv"
)

// Timer slack: how late the kernel may fire a thread's timers (nanosleep,
// futex and epoll timeouts) so that it can batch their wake-ups. The
// kernel's default is 50 µs; the whole command runs with 1 ms unless
// told otherwise, set before the Go runtime starts its first thread so
// that every thread has it (a thread inherits its creator's slack, and a
// process, the provider plugins the host starts included, its parent
// thread's across exec).
//
// Why: while a Go process has work, its sysmon thread sleeps 20 µs at a
// time (usleep), and a sleep that short costs a wake-up and two context
// switches each time, about every 70 µs on the 2-core VM the bench runs
// on. A lone login keeps the host busy for about a millisecond, so sysmon
// woke 7–8 times per login (more than a third of the host's context
// switches, and, preempting the thread that served the login on its CPU,
// 16% of the host's CPU in a perf profile). With 1 ms of slack those
// sleeps end about every millisecond. A Go timer fires at most the slack
// late, which none of the host's deadlines (seconds) notices; sysmon's
// other jobs (taking a P back from a thread blocked in a syscall,
// preempting a goroutine that ran 10 ms) happen up to that much later.
// A/B runs at c=1 and c=32: see the commit message.
const (
	defaultTimerSlack = 1_000_000  // ns
	kernelTimerSlack  = 50_000     // ns: the kernel's default
	maxTimerSlack     = 10_000_000 // ns: a Go timer 10 ms late at most
)

// timerSlackEnv overrides the slack, in nanoseconds ("0": leave the
// inherited slack alone). Not TWOFACTOR_…: the config loader reads those
// as config keys.
const timerSlackEnv = "TF_TIMERSLACK"

// timerSlack is the slack to set and whether to set it at all: TF_TIMERSLACK
// if set, else defaultTimerSlack when the inherited slack is the kernel's
// default (one set by whoever started the process, e.g. systemd's
// TimerSlackNSec=, is kept). The C constructor in timerslack_cgo.go
// applies the same rule before the runtime starts.
func timerSlack(inherited uint64) (ns uint64, set bool, err error) {
	v, ok := os.LookupEnv(timerSlackEnv)
	if !ok || v == "" {
		return defaultTimerSlack, inherited == kernelTimerSlack, nil
	}
	ns, err = strconv.ParseUint(v, 10, 64)
	if err != nil || ns > maxTimerSlack {
		return 0, false, fmt.Errorf("%s=%q: want nanoseconds from 0 (leave the inherited slack) to %d", timerSlackEnv, v, maxTimerSlack)
	}
	return ns, ns != 0, nil
}
