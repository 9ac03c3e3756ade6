package fake

import (
	"context"
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
