package providertest

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// Rule names one promise the kit checks. Each is a subtest of Run, and
// every failure message starts with "rule NAME:".
type Rule string

// The rules, in the order Run checks them. See the package documentation
// for what each one checks.
const (
	RuleInfoComplete      Rule = "info-complete"
	RuleConfigure         Rule = "configure"
	RuleConfigureRequired Rule = "configure-required"
	RuleConfigureUnknown  Rule = "configure-unknown"
	RuleActivate          Rule = "activate"
	RuleEnrollRoundTrip   Rule = "enroll-roundtrip"
	RuleGarbageCode       Rule = "garbage-code"
	RuleGarbageState      Rule = "garbage-state"
	RuleAllowReplay       Rule = "allow-replay"
	RuleFactors           Rule = "factors"
	RulePendingPoll       Rule = "pending-poll"
	RuleDeadline          Rule = "deadline"
	RuleProcessExit       Rule = "process-exit"
)

// Target is the provider Run checks: a binary (Binary) or a value in this
// process (InProcess).
type Target struct {
	path string
	impl sdk.Provider
}

// Binary is the provider plugin at path, started by Run as the host starts
// it (sdkplugin.ClientConfig, plugin.NewClient, sdkplugin.Dispense) and killed when
// the test ends.
func Binary(path string) Target { return Target{path: path} }

// InProcess is p itself, called directly. It should be unconfigured, as a
// freshly started plugin is.
func InProcess(p sdk.Provider) Target { return Target{impl: p} }

// String names the target in messages.
func (t Target) String() string {
	if t.impl != nil {
		return fmt.Sprintf("in-process %T", t.impl)
	}
	return "binary " + t.path
}

// Options adds what the kit cannot know about a provider. The zero value
// checks every rule that needs no help.
type Options struct {
	// Code, when set, returns a valid code for the enrollment in state at
	// time now, as the user's device would show it; the provider's own
	// test knows its state format. With it the kit confirms enrollment
	// with a valid code and checks RuleAllowReplay.
	Code func(state []byte, now time.Time) (string, error)
	// Delivered, for a provider that sends its codes (by email, by SMS),
	// returns the code it delivered last to the kit's user, after Enroll
	// begin or Challenge: the test reads it where the provider sent it
	// (its own SMTP server). With it the kit confirms enrollment with the
	// delivered code and checks RuleChallenge fully.
	Delivered func() (string, error)
	// Answer, for a provider whose client answers what the provider
	// handed it (WebAuthn: Display.Public after Enroll begin,
	// ChallengeResponse.Public after Challenge), returns the client's
	// answer to public, as the test's software authenticator makes it.
	// The kit uses it where it would use Delivered.
	Answer func(public string) (string, error)
	// EnrollInputs answer Info.EnrollInputs on Enroll begin (an address
	// the test's server receives mail for).
	EnrollInputs map[string]string
	// Skip lists rules that do not apply to this provider; each is
	// reported as skipped. RuleConfigure cannot be skipped.
	Skip []Rule
	// Timeout bounds each call the kit makes; 10 seconds when zero. The
	// first call that misses it (no answer, or the deadline's own error
	// once it passed) fails its rule and stops the run: every later call
	// would wait out its deadline too, so a slow provider is reported in
	// about one Timeout instead of one per call.
	Timeout time.Duration
}

// Run checks target against every rule, configuring it with settings
// (which must be valid and include every required field). Pass at most one
// Options.
func Run(t *testing.T, target Target, settings sdk.Settings, opts ...Options) {
	t.Helper()
	if len(opts) > 1 {
		t.Fatal("providertest.Run: pass at most one Options")
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	run(testingT{t}, target, settings, o)
}

// tb is the part of *testing.T the kit uses, so that the kit's own tests
// can record its verdicts instead of failing.
type tb interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	Run(name string, f func(tb)) bool
}

type testingT struct{ *testing.T }

func (t testingT) Run(name string, f func(tb)) bool {
	return t.T.Run(name, func(t *testing.T) { f(testingT{t}) })
}

// kit is one run: the provider under test and what earlier rules learnt.
type kit struct {
	target   Target
	settings sdk.Settings
	opts     Options
	prov     sdk.Provider
	client   *plugin.Client // nil in process
	logs     *logRecorder   // the plugin's log; nil in process

	info       sdk.Info
	configured bool
	cur        tb            // the rule running now
	rule       Rule          // its name
	missed     string        // the first deadline miss; the run stops there
	badReason  map[Rule]bool // rules that already reported a reason outside the rule
	now        time.Time     // the host's time for every request
	pending    []byte        // state from Enroll begin
	confirmed  []byte        // state from a finished enrollment
}

func run(t tb, target Target, settings sdk.Settings, o Options) {
	t.Helper()
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if slices.Contains(o.Skip, RuleConfigure) {
		t.Fatalf("providertest: rule %s cannot be skipped: every other rule needs a configured provider", RuleConfigure)
	}
	k := &kit{target: target, settings: settings, opts: o, now: time.Now().UTC().Truncate(time.Second)}
	k.start(t)
	rules := []struct {
		rule Rule
		fn   func(tb)
	}{
		{RuleInfoComplete, k.checkInfo},
		{RuleConfigure, k.checkConfigure},
		{RuleConfigureRequired, k.checkConfigureRequired},
		{RuleConfigureUnknown, k.checkConfigureUnknown},
		{RuleActivate, k.checkActivate},
		{RuleEnrollRoundTrip, k.checkEnroll},
		{RuleGarbageCode, k.checkGarbageCode},
		{RuleGarbageState, k.checkGarbageState},
		{RuleAllowReplay, k.checkAllowReplay},
		{RuleChallenge, k.checkChallenge},
		{RuleFactors, k.checkFactors},
		{RulePendingPoll, k.checkPendingPoll},
		{RuleDeadline, k.checkDeadline},
		{RuleProcessExit, k.checkProcessExit},
	}
	for _, r := range rules {
		t.Run(string(r.rule), func(t tb) {
			if slices.Contains(o.Skip, r.rule) {
				t.Skipf("rule %s skipped by Options.Skip", r.rule)
			}
			k.cur, k.rule = t, r.rule
			r.fn(t)
		})
		if k.missed != "" {
			t.Fatalf("providertest: %s missed a deadline (%s); the kit stops at the first miss instead of waiting out every remaining call", target, k.missed)
		}
		if r.rule != RuleInfoComplete && !k.configured {
			t.Fatalf("providertest: %s is not configured (see rule %s); the remaining rules cannot run", target, RuleConfigure)
		}
	}
}

// start makes the provider: for a binary, a plugin process started as the
// host starts one.
func (k *kit) start(t tb) {
	t.Helper()
	if k.target.impl != nil {
		k.prov = k.target.impl
		return
	}
	if k.target.path == "" {
		t.Fatalf("providertest: the Target is empty; use Binary or InProcess")
	}
	k.logs = newLogRecorder()
	cmd := exec.Command(k.target.path)
	setParentDeathSignal(cmd)
	log := hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Trace, Output: k.logs})
	// Prepare, as the host does: Verify takes the plugin's side channel
	// when its SDK offers one, so the kit checks the path logins take.
	launch := sdkplugin.Prepare(cmd, log)
	k.client = plugin.NewClient(launch.Config)
	t.Cleanup(func() {
		k.client.Kill()
		launch.Close()
		if t.Failed() {
			t.Logf("the plugin's log, last lines:\n%s", k.logs.tail(40))
		}
	})
	p, err := launch.Dispense(k.client)
	if err != nil {
		t.Fatalf("rule start: %s does not start as a provider plugin: %v", k.target.path, err)
	}
	k.prov = p
}
