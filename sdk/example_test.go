package sdk_test

import (
	"context"

	"github.com/twofactor/twofactor/sdk"
)

// acme is a provider; examples/provider-hotp in this repository is a
// complete one.
type acme struct{}

func (acme) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "acme", Version: "0.1.0",
		Capabilities: sdk.Capabilities{Code: true}}, nil
}

func (acme) Configure(context.Context, sdk.Settings) error { return nil }

func (acme) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}

func (acme) Enroll(context.Context, sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInvalidRequest, "acme does not enroll users yet")
}

func (acme) Verify(context.Context, sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
}

func ExampleServe() {
	// This is the whole main function of the binary twofactor-provider-acme.
	// Serve does the go-plugin handshake on stdout and serves until the
	// host ends the process, so main must print nothing before it. Build
	// the logger before Serve and hand it to the provider: its lines reach
	// the host's log under the provider's name.
	//
	//	func main() {
	//		sdk.Serve(acme.New(acme.WithLogger(sdk.Logger())))
	//	}
	//
	// Run by hand, the binary explains that the host starts it, and exits.
	sdk.Serve(acme{})
}
