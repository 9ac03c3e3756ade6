package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// timeouts are one provider's deadlines.
type timeouts struct {
	call     time.Duration // Enroll, Verify
	control  time.Duration // Info, Configure, health pings
	activate time.Duration // control, or call when a backend is involved
}

// timeoutsFor derives a provider's deadlines from its spec and, once it
// has said it, its Info: a provider whose schema declares a backend
// timeout (BackendTimeoutSetting) gets that plus BackendMargin for the
// calls that reach the backend, Activate included.
func timeoutsFor(spec ProviderSpec, info sdk.Info) timeouts {
	t := timeouts{call: spec.Timeout}
	if t.call <= 0 {
		t.call = DefaultTimeout
	}
	t.control = min(t.call, ControlTimeout)
	t.activate = t.control
	if f, ok := info.Schema.Field(BackendTimeoutSetting); ok && f.Type == sdk.TypeDuration {
		// Parse errors are Configure's to report; until then the
		// defaults stand.
		if v, err := info.Schema.Parse(spec.Settings); err == nil {
			backend := v.Duration(BackendTimeoutSetting) + BackendMargin
			t.call = max(t.call, backend)
			t.activate = max(t.activate, backend)
		}
	}
	return t
}

// bounded runs fn with a deadline limit from now, for the calls the
// supervisor makes itself.
func bounded(ctx context.Context, limit time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return fn(ctx)
}

// deadlined is the provider a Call's fn sees: every method runs under
// the provider's deadline counted from the start of the Call, so a retry
// after a restart does not get a fresh budget. gRPC enforces the deadline
// on the host's side of the connection, so it holds even when the plugin
// process is stopped.
type deadlined struct {
	inner   sdk.Provider
	started time.Time
	tos     timeouts
	missed  time.Duration // the deadline a method missed, 0 if none
}

var _ sdk.Provider = (*deadlined)(nil)

// deadlineSkew is how far ahead of the host's deadline a plugin's answer
// that its own copy ended may arrive and still count as the host's
// deadline missed: the time a request takes to reach the plugin, with
// room for a loaded machine.
const deadlineSkew = 100 * time.Millisecond

func within[T any](d *deadlined, ctx context.Context, limit time.Duration, fn func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithDeadline(ctx, d.started.Add(limit))
	defer cancel()
	out, err := fn(cctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && cctx.Err() == nil {
		// The plugin got the deadline as time remaining, so its copy can
		// end, and its answer say so, a moment before ours: wait out
		// that moment (at most deadlineSkew) so the miss is counted as
		// ours.
		if end, _ := cctx.Deadline(); time.Until(end) <= deadlineSkew {
			<-cctx.Done()
		}
	}
	// Our deadline, not the caller's: the caller's own end (a client
	// that left) is not the provider's fault.
	if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		d.missed = limit
	}
	return out, err
}

func (d *deadlined) Info(ctx context.Context) (sdk.Info, error) {
	return within(d, ctx, d.tos.control, d.inner.Info)
}

func (d *deadlined) Configure(ctx context.Context, s sdk.Settings) error {
	_, err := within(d, ctx, d.tos.control, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, d.inner.Configure(ctx, s)
	})
	return err
}

func (d *deadlined) Activate(ctx context.Context) (sdk.Activation, error) {
	return within(d, ctx, d.tos.activate, d.inner.Activate)
}

func (d *deadlined) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return within(d, ctx, d.tos.call, func(ctx context.Context) (sdk.EnrollResponse, error) { return d.inner.Enroll(ctx, req) })
}

func (d *deadlined) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	return within(d, ctx, d.tos.call, func(ctx context.Context) (sdk.VerifyResponse, error) { return d.inner.Verify(ctx, req) })
}

var _ sdk.Challenger = (*deadlined)(nil)

// Challenge runs the provider's challenge step (protocol 2) under the call
// deadline; a provider without one answers KindUnsupported.
func (d *deadlined) Challenge(ctx context.Context, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	c, ok := d.inner.(sdk.Challenger)
	if !ok {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindUnsupported, "provider has no challenge step")
	}
	return within(d, ctx, d.tos.call, func(ctx context.Context) (sdk.ChallengeResponse, error) { return c.Challenge(ctx, req) })
}
