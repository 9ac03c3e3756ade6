package supervisor

import "time"

// Restart backoff, one rule for every way a plugin fails: a start that
// fails, and a process that dies (or hangs) within crashWindow of coming
// up (a provider that dies on every Verify, or soon after it starts).
// Such failures in a row are counted: the first is retried at once, as a
// single crash always is; each next waits backoffMin, doubling, capped at
// backoffMax. A process that stays up crashWindow clears the count.
// Without it, each failure in a loop cost a fork, a handshake and an
// Activate (a backend call, for Duo) per login.
const (
	backoffMin  = 200 * time.Millisecond
	backoffMax  = 30 * time.Second
	crashWindow = time.Second
)

// restartPolicy is that rule's state for one provider. The caller holds
// the Process's lock and passes its clock's time.
type restartPolicy struct {
	failures int       // in a row, since a process last stayed up crashWindow
	upAt     time.Time // when the current (or last) process came up
	next     time.Time // no start before this
}

// backoffAfter is the wait before the start that follows n failures in a
// row.
func backoffAfter(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(backoffMin<<min(n-2, 16), backoffMax)
}

// up records a process that came up at now.
func (r *restartPolicy) up(now time.Time) { r.upAt = now }

// failed counts a failure at now and returns the wait it sets.
func (r *restartPolicy) failed(now time.Time) time.Duration {
	r.failures++
	wait := backoffAfter(r.failures)
	r.next = now.Add(wait)
	return wait
}

// crashed records the crash (or hang) at now of the process that came up
// last: a failure if it came within crashWindow of coming up, else the
// end of any run of failures. It returns the wait it sets.
func (r *restartPolicy) crashed(now time.Time) time.Duration {
	if r.upAt.IsZero() || now.Sub(r.upAt) >= crashWindow {
		r.failures, r.next = 0, time.Time{}
		return 0
	}
	return r.failed(now)
}

// wait is how long a start must still wait at now; zero or less: none.
func (r *restartPolicy) wait(now time.Time) time.Duration { return r.next.Sub(now) }
