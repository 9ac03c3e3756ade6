package framework_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/framework"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// startPlugin runs the TOTP plugin binary with go-plugin, as the framework
// does, and configures it; the process is stopped when the benchmark ends.
func startPlugin(b *testing.B) sdk.Provider {
	b.Helper()
	client := plugin.NewClient(sdkplugin.ClientConfig(exec.Command(pluginPath(b)), hclog.NewNullLogger()))
	b.Cleanup(client.Kill)
	p, err := sdkplugin.Dispense(client)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Configure(b.Context(), totpSettings); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkProviderVerify is the cost of one Verify call on the provider
// contract, in this process and across the plugin wire. The request is
// always the same: a valid code against a state whose last step is 0, so
// every call is an allow and computes the same codes; its new state is
// thrown away.
func BenchmarkProviderVerify(b *testing.B) {
	ctx := context.Background()
	// The state comes from the in-process provider; the plugin runs the
	// same code, so it accepts it just the same.
	local := totpprovider.New()
	if err := local.Configure(ctx, totpSettings); err != nil {
		b.Fatal(err)
	}
	begin, err := local.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: start})
	if err != nil {
		b.Fatal(err)
	}
	req := sdk.VerifyRequest{
		User: sdk.User{ID: "alice"}, State: begin.State,
		Code: codeAt(b, secretOf(b, begin.Display), start), Now: start,
	}

	for _, bc := range []struct {
		name string
		prov func(*testing.B) sdk.Provider
	}{
		{"in-process", func(*testing.B) sdk.Provider { return local }},
		{"plugin", startPlugin},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := bc.prov(b)
			if res, err := p.Verify(ctx, req); err != nil || res.Outcome != sdk.Allow || res.State == nil {
				b.Fatalf("Verify = %+v, %v; want allow with a new state", res, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := p.Verify(ctx, req)
				if err != nil || res.Outcome != sdk.Allow {
					b.Fatalf("Verify = %+v, %v", res, err)
				}
			}
		})
	}
}

// BenchmarkFrameworkVerify is the cost of one framework.Verify on SQLite:
// read the attempts and the enrollment, unseal its state, call the
// provider, write the audit entry (a durable commit). Every iteration is a
// replayed code, a deny with no state to write, so iterations are alike.
func BenchmarkFrameworkVerify(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			e := newEnv(b, mode.spec(b))
			secret := e.enroll(b, "alice")
			in := framework.VerifyInput{
				UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff,
				// The code that confirmed the enrollment: each verify reads,
				// unseals and asks the provider, which answers replayed; a
				// wrong code would spend the attempt budget and lock alice.
				Code: codeAt(b, secret, e.clk.Now()),
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := e.fw.Verify(ctx, in)
				if err != nil || res.Outcome != sdk.Deny || res.Reason != sdk.ReasonReplayed {
					b.Fatalf("Verify = %+v, %v; want deny replayed", res, err)
				}
			}
		})
	}
}
