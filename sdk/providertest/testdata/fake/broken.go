package fake

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// IncompleteInfo has no version and a setting without help text.
func IncompleteInfo() sdk.Provider { return incompleteInfo{New()} }

type incompleteInfo struct{ *Provider }

func (p incompleteInfo) Info(ctx context.Context) (sdk.Info, error) {
	info, err := p.Provider.Info(ctx)
	info.Version = ""
	info.Schema = sdk.Schema{{Name: "issuer", Type: sdk.TypeString, Required: true}, schema[1]}
	return info, err
}

// SendsToNothing declares that EnrollBegin sends to an input it does
// not ask for: the host's send limit would have no destination to key.
func SendsToNothing() sdk.Provider { return sendsToNothing{New()} }

type sendsToNothing struct{ *Provider }

func (p sendsToNothing) Info(ctx context.Context) (sdk.Info, error) {
	info, err := p.Provider.Info(ctx)
	info.Capabilities.EnrollSendsTo = "phone"
	return info, err
}

// LoosensMisfit marks an int setting as loosening by its values, which
// only a string or bool setting can be: a host could not judge a reload
// by it, and refuses to start the plugin.
func LoosensMisfit() sdk.Provider { return loosensMisfit{New()} }

type loosensMisfit struct{ *Provider }

func (p loosensMisfit) Info(ctx context.Context) (sdk.Info, error) {
	info, err := p.Provider.Info(ctx)
	info.Schema = append(info.Schema.Clone(), sdk.Field{Name: "window", Type: sdk.TypeInt, Default: "1", Help: "codes accepted around now",
		Loosens: &sdk.Loosens{Values: []string{"2"}, Why: "more codes are accepted"}})
	return info, err
}

// SignInOutsideInfo states at enrollment a sign-in code of 10 digits
// while Info says it takes 6 to 8: the host would refuse every
// enrollment.
func SignInOutsideInfo() sdk.Provider { return signInOutsideInfo{New()} }

type signInOutsideInfo struct{ *Provider }

func (p signInOutsideInfo) Info(ctx context.Context) (sdk.Info, error) {
	info, err := p.Provider.Info(ctx)
	info.CodeInput = sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8}
	return info, err
}

func (p signInOutsideInfo) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	resp, err := p.Provider.Enroll(ctx, req)
	if req.Step == sdk.EnrollBegin {
		resp.Display.SignInCodeInput = sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 10, MaxLen: 10}
	}
	return resp, err
}

// Panics slices the code without checking its length first.
func Panics() sdk.Provider { return panics{New()} }

type panics struct{ *Provider }

func (p panics) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	req.Code = req.Code[:6] // panics on a code shorter than six bytes
	return p.Provider.Verify(ctx, req)
}

// IgnoresDeadline checks its "backend" in Activate without passing ctx.
func IgnoresDeadline() sdk.Provider { return ignoresDeadline{New()} }

type ignoresDeadline struct{ *Provider }

func (p ignoresDeadline) Activate(context.Context) (sdk.Activation, error) {
	time.Sleep(5 * time.Second) // a slow backend call made with context.Background()
	return p.Provider.Activate(context.Background())
}

// ErrorWithoutFix reports an error diagnostic that does not say what to
// change.
func ErrorWithoutFix() sdk.Provider { return errorWithoutFix{New()} }

type errorWithoutFix struct{ *Provider }

func (p errorWithoutFix) Activate(ctx context.Context) (sdk.Activation, error) {
	a, err := p.Provider.Activate(ctx)
	a.Health = sdk.Unhealthy
	a.Diagnostics = append(a.Diagnostics, sdk.Diagnostic{Code: "backend_down", Severity: sdk.SeverityError,
		Message: "the backend does not answer"})
	return a, err
}

// PushWithoutTxID answers a push pending but gives no TxID to poll.
func PushWithoutTxID() sdk.Provider { return pushWithoutTxID{New()} }

type pushWithoutTxID struct{ *Provider }

func (p pushWithoutTxID) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	r, err := p.Provider.Verify(ctx, req)
	r.TxID = ""
	return r, err
}

// AnyFactor ignores the factor a request names.
func AnyFactor() sdk.Provider { return anyFactor{New()} }

type anyFactor struct{ *Provider }

func (p anyFactor) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	req.Factor = ""
	return p.Provider.Verify(ctx, req)
}

// Slow answers Verify only after its context ended, as a provider that
// waits on a backend with a longer timeout of its own does; calls counts
// the Verify calls it got.
func Slow(calls *atomic.Int32) sdk.Provider { return slow{New(), calls} }

type slow struct {
	*Provider
	calls *atomic.Int32
}

func (p slow) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	p.calls.Add(1)
	<-ctx.Done()
	time.Sleep(time.Minute) // and then some: it never looked at ctx
	return sdk.VerifyResponse{}, ctx.Err()
}

// OwnReason denies a wrong code with a reason of its own, outside the
// SDK's vocabulary and without the custom prefix.
func OwnReason() sdk.Provider { return ownReason{New()} }

type ownReason struct{ *Provider }

func (p ownReason) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	r, err := p.Provider.Verify(ctx, req)
	if r.Reason == sdk.ReasonInvalidCode {
		r.Reason = "wrong_code"
	}
	return r, err
}

// StrictAfterFailures refuses every code once the user has failed before
// (VerifyRequest.Failures): it decides on what should only change what
// it explains.
func StrictAfterFailures() sdk.Provider { return strictAfterFailures{New()} }

type strictAfterFailures struct{ *Provider }

func (p strictAfterFailures) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if req.Failures > 0 && req.Code != "" {
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	return p.Provider.Verify(ctx, req)
}
