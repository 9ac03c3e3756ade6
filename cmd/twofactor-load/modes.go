package main

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// The workloads of -mode.
const (
	// modeFreshest sends each user's freshest valid code, round robin: the
	// first use of a (user, step) is an allow, every later one (until the
	// clock reaches the next step) a replay. With few users and a fast
	// host this is almost all replays.
	modeFreshest = "freshest"
	// modeFirstUse sends only first uses of valid codes, so every request
	// is a real login that writes the user's new state (issue 16).
	//
	// The host runs on the real clock and accepts a step at most once,
	// and only a step newer than the user's last accepted one, within
	// ±skew steps of now. Rather than widen the host's skew (it changes
	// the work of every check, so it would measure another setting) or
	// shorten its period, the generator keeps per user the last step it
	// sent and hands a user out only for a step in [now, now+lead] newer
	// than that: with the default skew 1 and -lead 1, a user gives two
	// logins in its first 30-s step (now, then now+1) and one a step after
	// that. So the run needs enough users: about (logins/s × seconds)/2
	// for a run inside one step. The bench imports them with `twofactor
	// import`. Steps below now are never sent: near a step boundary the
	// host's clock may already be past them. A user is never handed out
	// while a request of its is in flight, so no two requests race for one
	// state. When no user has a fresh step left, the request is not sent
	// and counts as the error "out of fresh codes": the run was too small
	// for the host's speed, and says so rather than measuring replays.
	modeFirstUse = "first-use"
	// modeWrong sends only wrong codes, at most -wrong-per-user to a user,
	// so the attempt gate (which backs a user off after 5 wrong codes)
	// never answers 429 and the run measures the wrong-code path. A user
	// whose budget here is spent is skipped; when all are, the error
	// "out of users for wrong codes".
	modeWrong = "wrong"
)

var (
	errOutOfFresh = errors.New("out of fresh codes: import more users")
	errOutOfWrong = errors.New("out of users for wrong codes: import more users")
)

// request is what a worker sends next: a user and a code, with what the
// generator expects of it.
type request struct {
	u    *otpUser
	code string
	// step is the step the code belongs to, -1 for a wrong code.
	step int64
	// fresh says the request is the first use of (u, step).
	fresh bool
	// claimed says u was handed out exclusively: release it once answered.
	claimed bool
}

// nextRequest picks the next request of the workload at now. next is the
// level's round-robin cursor.
func (g *generator) nextRequest(now time.Time, next *atomic.Uint64, rng *rand.Rand) (request, error) {
	n := uint64(len(g.users))
	switch g.o.mode {
	case modeFirstUse:
		// One pass over the users at most: past it, every user is busy or
		// has no fresh step left.
		for range n {
			u := g.users[next.Add(1)%n]
			if code, step, ok := u.claimFresh(now, g.o.lead); ok {
				return request{u: u, code: code, step: step, fresh: true, claimed: true}, nil
			}
		}
		return request{}, errOutOfFresh
	case modeWrong:
		for range n {
			u := g.users[next.Add(1)%n]
			if u.wrongSent.Add(1) > int64(g.o.wrongPerUser) {
				continue
			}
			// The window is wider than any skew a host can be set to.
			return request{u: u, code: u.wrongCode(now, 3, rng), step: -1}, nil
		}
		return request{}, errOutOfWrong
	}
	u := g.users[next.Add(1)%n]
	if g.o.wrongRatio > 0 && rng.Float64() < g.o.wrongRatio {
		return request{u: u, code: u.wrongCode(now, 3, rng), step: -1}, nil
	}
	code, step, fresh := u.next(now, g.o.lead)
	return request{u: u, code: code, step: step, fresh: fresh}, nil
}

// claimFresh hands u out for the oldest unambiguous step in [now,
// now+lead] newer than the last one sent, unless a request of u is in
// flight or there is none. release ends the claim.
//
// A step is ambiguous when its code is also the code of one of the next
// ambiguityReach steps (two 6-digit codes agree about once in a million).
// The host, which accepts the highest fresh step a code matches, would
// then record that later step, and the generator's next first use (that
// step) would be answered replayed, rightly: a run of a few hundred
// thousand logins met one such pair. Skipping the step keeps every request
// of the workload an unambiguous first use.
func (u *otpUser) claimFresh(now time.Time, lead int64) (code string, step int64, ok bool) {
	t := u.stepAt(now)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.busy {
		return "", 0, false
	}
	for step = max(u.step+1, t); step <= t+lead; step++ {
		if c, ambiguous := u.unambiguousCode(step); !ambiguous {
			u.step, u.code, u.busy = step, c, true
			return c, step, true
		}
	}
	return "", 0, false
}

// ambiguityReach is how many steps after a code's own the host may still
// match it at: its window reaches skew (1 by default) past the step of
// the moment it checks, which is the claimed step or the one after.
const ambiguityReach = 2

// unambiguousCode is step's code, and whether one of the next
// ambiguityReach steps has the same code.
func (u *otpUser) unambiguousCode(step int64) (code string, ambiguous bool) {
	cs := u.codes(step, 1+ambiguityReach)
	return cs[0], slices.Contains(cs[1:], cs[0])
}

func (u *otpUser) release() {
	u.mu.Lock()
	u.busy = false
	u.mu.Unlock()
}
