package framework

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// Observer is told about the framework's decisions as they are made, for
// metrics. The framework itself depends on no metrics library: the host
// service implements Observer with Prometheus (host/metrics), an embedder
// may implement it with anything, or leave Options.Observer nil.
//
// Methods are called synchronously on the request's path and must be
// quick and safe for concurrent use. They never receive a secret or a
// code. Embed NopObserver to stay compatible when methods are added.
type Observer interface {
	// Verified reports one verification decision: every answer of Verify
	// (allow, deny, pending; deny with ReasonLockedOut while the user is
	// backed off; OutcomeError with reason "provider_unavailable" when the
	// provider could not answer), and the final answer of PollVerification
	// (polls still pending are not reported, so a push counts once as
	// pending and once as its outcome). d is the wall time from the call's
	// start to the decision.
	Verified(provider string, outcome sdk.Outcome, reason sdk.Reason, d time.Duration)
	// LockedOut reports a failure that started or extended a user's
	// backoff; the same event is audited as EventLockout.
	LockedOut(userID, provider string)
}

// OutcomeError is the outcome reported to an Observer for a verification
// that ended without a decision (the provider was unavailable); the reason
// is the error's Code.
const OutcomeError sdk.Outcome = "error"

// NopObserver ignores everything. It is what a nil Options.Observer means.
type NopObserver struct{}

// Verified implements Observer.
func (NopObserver) Verified(string, sdk.Outcome, sdk.Reason, time.Duration) {}

// LockedOut implements Observer.
func (NopObserver) LockedOut(string, string) {}

var _ Observer = NopObserver{}

// verifyTimer rides in the context of one Verify or PollVerification call,
// so that decided, deep in the flow, can report the call's duration.
type verifyTimer struct {
	start time.Time
	poll  bool
}

type verifyTimerKey struct{}

// startVerify marks the start of a Verify (poll false) or a
// PollVerification (poll true).
func startVerify(ctx context.Context, poll bool) context.Context {
	return context.WithValue(ctx, verifyTimerKey{}, verifyTimer{start: time.Now(), poll: poll})
}

// observe reports a decision to the Observer.
func (f *Framework) observe(ctx context.Context, in VerifyInput, outcome sdk.Outcome, reason sdk.Reason) {
	t, _ := ctx.Value(verifyTimerKey{}).(verifyTimer)
	if t.poll && outcome == sdk.Pending {
		return // counted when the push was sent
	}
	var d time.Duration
	if !t.start.IsZero() {
		d = time.Since(t.start)
	}
	f.obs.Verified(in.Provider, outcome, reason, d)
}

// observeFailure reports a verification that ended because the provider
// could not answer; other errors are not decisions and are not reported.
func (f *Framework) observeFailure(ctx context.Context, in VerifyInput, err error) {
	if c := CodeOf(err); noAnswer(c) {
		f.observe(ctx, in, OutcomeError, sdk.Reason(c))
	}
}

// noAnswer reports whether code means the provider gave no answer (down,
// or past its deadline): an attempt without a decision, which is still
// counted and audited.
func noAnswer(c Code) bool {
	return c == CodeProviderUnavailable || c == CodeProviderTimeout
}
