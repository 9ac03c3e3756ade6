package supervisor

import (
	"testing"
	"time"
)

// TestRestartPolicy: failed starts and quick crashes count alike toward
// one backoff (the first retried at once, then 200 ms doubling, capped at
// 30 s); a process that stays up crashWindow clears the count. Times are
// the test's: no process, no sleep.
func TestRestartPolicy(t *testing.T) {
	type step struct {
		event string        // "up", "fail" (a start failed) or "crash"
		after time.Duration // since the previous step
		wait  time.Duration // the wait the step sets (fail, crash)
	}
	ms := time.Millisecond
	cases := []struct {
		name  string
		steps []step
	}{
		{"failed starts", []step{{"fail", 0, 0}, {"fail", 0, 200 * ms}, {"fail", 200 * ms, 400 * ms}, {"fail", 400 * ms, 800 * ms}}},
		{"a crash loop", []step{{"up", 0, 0}, {"crash", 10 * ms, 0}, {"up", 0, 0}, {"crash", 10 * ms, 200 * ms}, {"up", 200 * ms, 0}, {"crash", 10 * ms, 400 * ms}}},
		{"a crash after staying up is restarted at once", []step{{"up", 0, 0}, {"crash", time.Second, 0}, {"up", 0, 0}, {"crash", time.Hour, 0}}},
		{"staying up clears the count", []step{{"fail", 0, 0}, {"fail", 0, 200 * ms}, {"up", 200 * ms, 0}, {"crash", time.Second, 0}, {"up", 0, 0}, {"crash", 10 * ms, 0}}},
		{"failed starts and quick crashes count together", []step{{"up", 0, 0}, {"crash", 10 * ms, 0}, {"fail", 0, 200 * ms}, {"up", 200 * ms, 0}, {"crash", 10 * ms, 400 * ms}, {"fail", 400 * ms, 800 * ms}}},
		{"capped", append(func() []step {
			s := make([]step, 0, 20)
			for range 20 {
				s = append(s, step{"fail", 0, -1})
			}
			return s
		}(), step{"fail", 0, backoffMax})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r restartPolicy
			now := time.Unix(1_800_000_000, 0)
			for i, s := range c.steps {
				now = now.Add(s.after)
				if w := r.wait(now); w > 0 {
					t.Fatalf("step %d (%s): a start is still %s away", i, s.event, w)
				}
				var got time.Duration
				switch s.event {
				case "up":
					r.up(now)
					continue
				case "fail":
					got = r.failed(now)
				case "crash":
					got = r.crashed(now)
				}
				if s.wait >= 0 && got != s.wait {
					t.Errorf("step %d (%s): wait %s, want %s", i, s.event, got, s.wait)
				}
				if w := r.wait(now); w != max(got, 0) && !(got == 0 && w <= 0) {
					t.Errorf("step %d (%s): the next start waits %s, the step said %s", i, s.event, w, got)
				}
				now = now.Add(got)
			}
		})
	}
}
