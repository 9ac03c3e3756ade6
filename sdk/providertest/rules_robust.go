package providertest

// The robustness rules: garbage codes and states, replays racing, deadlines
// and the plugin process exiting with its host.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

func (k *kit) checkGarbageCode(t tb) {
	t.Helper()
	state := k.verifyState(t)
	for _, g := range garbageCodes {
		k.checkDeny(t, RuleGarbageCode, "Verify with code "+g.name, k.verify(state, g.code, k.now))
		if k.pending != nil {
			o := k.enroll(sdk.EnrollRequest{Step: sdk.EnrollFinish, State: k.pending, Code: g.code})
			k.checkNotDone(t, RuleGarbageCode, "Enroll finish with code "+g.name, o)
		}
	}
	k.checkAlive(t, RuleGarbageCode)
}

func garbageStates(valid []byte) []struct {
	name  string
	state []byte
} {
	junk := make([]byte, 1024)
	r := rand.New(rand.NewPCG(4226, 6238))
	for i := range junk {
		junk[i] = byte(r.UintN(256))
	}
	states := []struct {
		name  string
		state []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"text", []byte("not a state")},
		{"1 KB of random bytes", junk},
		{"JSON null", []byte("null")},
		{"empty JSON object", []byte("{}")},
		{"JSON array", []byte("[1,2,3]")},
		{"future version", []byte(`{"v":99999}`)},
		{"64 KB of zeros", make([]byte, 64<<10)},
	}
	if len(valid) > 1 {
		states = append(states, struct {
			name  string
			state []byte
		}{"truncated valid state", valid[:len(valid)/2]})
	}
	return states
}

func (k *kit) checkGarbageState(t tb) {
	t.Helper()
	for _, g := range garbageStates(k.verifyState(t)) {
		k.checkDeny(t, RuleGarbageState, "Verify with state "+g.name, k.verify(g.state, "123456", k.now))
		o := k.enroll(sdk.EnrollRequest{Step: sdk.EnrollFinish, State: g.state, Code: "123456"})
		k.checkNotDone(t, RuleGarbageState, "Enroll finish with state "+g.name, o)
	}
	k.checkAlive(t, RuleGarbageState)
}

func (k *kit) checkAllowReplay(t tb) {
	t.Helper()
	if k.opts.Code == nil {
		t.Skipf("rule %s needs Options.Code to make a valid code", RuleAllowReplay)
	}
	if k.confirmed == nil {
		t.Skipf("no confirmed enrollment (see rule %s)", RuleEnrollRoundTrip)
	}
	// Later than any step or window the enrollment may have used, so that
	// time-based codes are fresh.
	now1, now2 := k.now.Add(10*time.Minute), k.now.Add(20*time.Minute)
	code, err := k.opts.Code(k.confirmed, now1)
	if err != nil {
		t.Fatalf("rule %s: Options.Code cannot make a code for the confirmed state: %v", RuleAllowReplay, err)
	}
	// The user's failures so far may change what a provider explains,
	// never what it decides: the valid code is allowed after a run of
	// them too (against the same state, which Verify does not change).
	const failures = 4
	o := k.verifyReq(sdk.VerifyRequest{User: kitUser, State: k.confirmed, Code: code, Now: now1, Failures: failures})
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Verify with a valid code after %d failures %s", RuleAllowReplay, failures, b)
	}
	if o.err != nil || o.val.Outcome != sdk.Allow {
		t.Errorf("rule %s: Verify with a valid code after %d failures (VerifyRequest.Failures) = %+v, %v; want %s: Failures may change what a provider explains, never what it decides",
			RuleAllowReplay, failures, o.val, o.err, sdk.Allow)
	}
	o = k.verify(k.confirmed, code, now1)
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Verify with a valid code %s", RuleAllowReplay, b)
	}
	if o.err != nil || o.val.Outcome != sdk.Allow {
		t.Fatalf("rule %s: Verify with a valid code (from Options.Code) = %+v, %v; want %s", RuleAllowReplay, o.val, o.err, sdk.Allow)
	}
	next := o.val.State
	if len(next) == 0 {
		t.Fatalf("rule %s: Verify allowed a code without returning a new state: nothing records that the code was used, so it can be replayed", RuleAllowReplay)
	}
	o = k.verify(next, code, now1)
	switch {
	case broken(o) != "":
		t.Errorf("rule %s: Verify replaying the code %s", RuleAllowReplay, broken(o))
	case o.err != nil:
		t.Errorf("rule %s: Verify replaying the code against the state its first use returned failed: %v", RuleAllowReplay, o.err)
	case o.val.Outcome != sdk.Deny || o.val.Reason != sdk.ReasonReplayed:
		t.Errorf("rule %s: Verify replaying the code = %s %q; want %s %q", RuleAllowReplay, o.val.Outcome, o.val.Reason, sdk.Deny, sdk.ReasonReplayed)
	}
	if code, err = k.opts.Code(next, now2); err != nil {
		t.Fatalf("rule %s: Options.Code cannot make a code for the state Verify returned: %v", RuleAllowReplay, err)
	}
	o = k.verify(next, code, now2)
	if b := broken(o); b != "" {
		t.Fatalf("rule %s: Verify of the next code %s", RuleAllowReplay, b)
	}
	if o.err != nil || o.val.Outcome != sdk.Allow {
		t.Errorf("rule %s: Verify of the next code against the state the last Verify returned = %+v, %v; want %s", RuleAllowReplay, o.val, o.err, sdk.Allow)
	}
}

// Deadline checks: a call with an ended context must return within
// promptly; one with a short deadline must return within promptly after it.
const (
	promptly      = 2 * time.Second
	shortDeadline = 250 * time.Millisecond
	// ignoredDeadlineLog is what the SDK's plugin server logs when a method
	// runs on after its context ended (sdk/server.go).
	ignoredDeadlineLog = "provider ignored its deadline"
	// sdkDeadlineGrace is how long after the context ends the SDK waits
	// before logging it, plus time for the line to reach the host.
	sdkDeadlineGrace = 2*time.Second + time.Second
)

// deadlineCalls are the calls checked against deadlines: the ones that may
// reach a backend.
func (k *kit) deadlineCalls(state []byte) []struct {
	name string
	fn   func(context.Context) (any, error)
} {
	return []struct {
		name string
		fn   func(context.Context) (any, error)
	}{
		{"Info", func(ctx context.Context) (any, error) { return k.prov.Info(ctx) }},
		{"Activate", func(ctx context.Context) (any, error) { return k.prov.Activate(ctx) }},
		{"Enroll", func(ctx context.Context) (any, error) {
			return k.prov.Enroll(ctx, sdk.EnrollRequest{User: kitUser, Step: sdk.EnrollBegin, Now: k.now})
		}},
		{"Verify", func(ctx context.Context) (any, error) {
			return k.prov.Verify(ctx, sdk.VerifyRequest{User: kitUser, State: state, Code: "000000", Now: k.now})
		}},
	}
}

// deadlineErrOK says whether err is an acceptable answer to a call whose
// deadline passed: none (the work was done in time), the context's error,
// or unavailable (a backend call cut short).
// deadlineErrOK accepts what a provider that respects its deadline may
// answer: the deadline itself, an unavailable backend, or a typed answer it
// could give at once without waiting on anything (say, invalid_state for an
// enrollment that is not finished). What the rule catches is a call that
// outlives its deadline, or fails as a bug.
func deadlineErrOK(err error) bool {
	if err == nil || isContextErr(err) {
		return true
	}
	k := kindOf(err)
	return k != "" && k != sdk.KindInternal
}

func (k *kit) checkDeadline(t tb) {
	t.Helper()
	state := k.pending
	if k.confirmed != nil {
		state = k.confirmed
	}
	for _, c := range k.deadlineCalls(state) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		o := callCtx(ctx, promptly, c.fn)
		cancel()
		switch {
		case o.hung:
			k.missed = c.name + " with an expired context"
			t.Fatalf("rule %s: %s with an expired context did not return within %s: it ignores its context", RuleDeadline, c.name, promptly)
		case broken(o) != "":
			t.Errorf("rule %s: %s with an expired context %s", RuleDeadline, c.name, broken(o))
		case !deadlineErrOK(o.err):
			t.Errorf("rule %s: %s with an expired context returned %v; want a deadline or cancellation error", RuleDeadline, c.name, o.err)
		}
	}
	for _, c := range k.deadlineCalls(state) {
		if c.name == "Info" {
			continue
		}
		mark := 0
		if k.logs != nil {
			mark = k.logs.mark()
		}
		ctx, cancel := context.WithTimeout(context.Background(), shortDeadline)
		o := callCtx(ctx, shortDeadline+promptly, c.fn)
		cancel()
		switch {
		case o.hung:
			k.missed = fmt.Sprintf("%s with a %s deadline", c.name, shortDeadline)
			t.Fatalf("rule %s: %s with a %s deadline was still running %s after it: it ignores its context", RuleDeadline, c.name, shortDeadline, promptly)
		case broken(o) != "":
			t.Errorf("rule %s: %s with a %s deadline %s", RuleDeadline, c.name, shortDeadline, broken(o))
			continue
		case !deadlineErrOK(o.err):
			t.Errorf("rule %s: %s with a %s deadline returned %v; want a deadline or cancellation error", RuleDeadline, c.name, shortDeadline, o.err)
			continue
		}
		// Over the wire the host's side of a call always ends at the
		// deadline; whether the provider stopped too shows in its log.
		if k.logs != nil && o.err != nil {
			if line, ok := k.logs.waitFor(ignoredDeadlineLog, mark, sdkDeadlineGrace); ok {
				t.Errorf("rule %s: the plugin went on running %s after the host's %s deadline passed; its log says: %s", RuleDeadline, c.name, shortDeadline, line)
			}
		}
	}
}

// exitWithin is how long go-plugin waits for a plugin to exit after asking
// it to before it kills the process.
const exitWithin = 2 * time.Second

func (k *kit) checkProcessExit(t tb) {
	t.Helper()
	if k.client == nil {
		t.Skipf("rule %s applies to Binary targets only", RuleProcessExit)
	}
	start := time.Now()
	k.client.Kill()
	took := time.Since(start)
	switch {
	case !k.client.Exited():
		t.Errorf("rule %s: the plugin process is still running after the host killed its client", RuleProcessExit)
	case took >= exitWithin:
		t.Errorf("rule %s: the plugin did not exit within %s of the host's request; go-plugin had to kill it", RuleProcessExit, exitWithin)
	}
}
