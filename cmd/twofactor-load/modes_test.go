package main

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// namedUser is testUser's key under another id.
func namedUser(t *testing.T, id string) *otpUser {
	u := testUser(t)
	u.id = id
	return u
}

// TestFirstUseSendsEachStepOnce: -mode first-use hands a user out for now,
// then now+1 (with -lead 1), never while it is in flight, never a step
// twice, and says so when the users run dry; the next step gives one more.
func TestFirstUseSendsEachStepOnce(t *testing.T) {
	now := time.Unix(1_700_000_010, 0)
	t0 := now.Unix() / 30
	g := &generator{o: &options{mode: modeFirstUse, lead: 1}, users: []*otpUser{namedUser(t, "a"), namedUser(t, "b")}}
	var next atomic.Uint64
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	take := func(at time.Time) (request, error) {
		rq, err := g.nextRequest(at, &next, rng)
		if err == nil {
			key := rq.u.id + "/" + rq.code
			if seen[key] || !rq.fresh || !rq.claimed {
				t.Fatalf("request %+v: sent before, or not a claimed first use", rq)
			}
			seen[key] = true
		}
		return rq, err
	}
	// Both users in flight: nothing left to hand out.
	a, _ := take(now)
	b, _ := take(now)
	if a.u == b.u || a.step != t0 || b.step != t0 {
		t.Fatalf("first two requests: %s step %d, %s step %d; want both users at step %d", a.u.id, a.step, b.u.id, b.step, t0)
	}
	if _, err := take(now); !errors.Is(err, errOutOfFresh) {
		t.Fatalf("with every user in flight: err %v, want errOutOfFresh", err)
	}
	a.u.release()
	b.u.release()
	for _, want := range []int64{t0 + 1, t0 + 1} {
		rq, err := take(now)
		if err != nil || rq.step != want {
			t.Fatalf("after release: step %d, err %v; want step %d", rq.step, err, want)
		}
		rq.u.release()
	}
	if _, err := take(now); !errors.Is(err, errOutOfFresh) {
		t.Fatalf("steps now and now+1 used: err %v, want errOutOfFresh", err)
	}
	// The next step frees one more code a user (now+2 relative to t0).
	later := now.Add(30 * time.Second)
	for range 2 {
		rq, err := take(later)
		if err != nil || rq.step != t0+2 {
			t.Fatalf("next step: step %d, err %v; want %d", rq.step, err, t0+2)
		}
		rq.u.release()
	}
}

// TestFirstUseSkipsAmbiguousSteps: a step whose code is also the next
// step's is not handed out (the host would record the later step, and the
// next first use would be a replay); the later step is.
func TestFirstUseSkipsAmbiguousSteps(t *testing.T) {
	const twin = 56_668_234 // testUser's codes of this step and the next agree
	u := testUser(t)
	a, b := u.codeFor(twin), u.codeFor(twin+1)
	if a != b || a != codeAt(t, time.Unix(twin*30, 0)) {
		t.Fatalf("fixture: steps %d and %d give %q and %q; want one code, pquerna/otp's", twin, twin+1, a, b)
	}
	now := time.Unix(twin*30+5, 0)
	code, step, ok := u.claimFresh(now, 1)
	if !ok || step != twin+1 || code != b {
		t.Fatalf("claimFresh at step %d = %q, step %d, %v; want the next step %d", twin, code, step, ok, twin+1)
	}
	u.release()
	// With no later step in reach, nothing is handed out.
	v := testUser(t)
	if _, step, ok := v.claimFresh(now, 0); ok {
		t.Fatalf("claimFresh with lead 0 at an ambiguous step: step %d; want none", step)
	}
}

// TestWrongCapsPerUser: -mode wrong sends at most -wrong-per-user wrong
// codes a user, each matching no step near now.
func TestWrongCapsPerUser(t *testing.T) {
	now := time.Unix(1_700_000_010, 0)
	users := []*otpUser{namedUser(t, "a"), namedUser(t, "b"), namedUser(t, "c")}
	g := &generator{o: &options{mode: modeWrong, wrongPerUser: 4}, users: users}
	var next atomic.Uint64
	rng := rand.New(rand.NewPCG(3, 4))
	per := map[string]int{}
	for range 12 {
		rq, err := g.nextRequest(now, &next, rng)
		if err != nil {
			t.Fatal(err)
		}
		if rq.step != -1 || rq.fresh || rq.claimed {
			t.Fatalf("wrong-code request %+v: want step -1, not fresh, not claimed", rq)
		}
		for s := now.Unix()/30 - 3; s <= now.Unix()/30+3; s++ {
			if c := codeAt(t, time.Unix(s*30, 0)); c == rq.code {
				t.Fatalf("wrong code %s is the code of step %d", rq.code, s)
			}
		}
		per[rq.u.id]++
	}
	for _, u := range users {
		if per[u.id] != 4 {
			t.Errorf("user %s got %d wrong codes, want 4", u.id, per[u.id])
		}
	}
	if _, err := g.nextRequest(now, &next, rng); !errors.Is(err, errOutOfWrong) {
		t.Fatalf("every user at 4: err %v, want errOutOfWrong", err)
	}
}
