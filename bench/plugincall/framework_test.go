//go:build bench

package plugincall

import (
	"context"
	"crypto/sha256"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/internal/testbin"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// BenchmarkFrameworkReplay is one framework.Verify on SQLite without
// HTTP, on the path most requests of the HTTP load take: a replayed code
// (attempt budget read, enrollment read, unseal, provider call, audit
// write; no state write, no failure counted, so iterations are alike).
// It is the framework's share of an HTTP verify, with the provider in this
// process and as the plugin binary.
func BenchmarkFrameworkReplay(b *testing.B) {
	dir, err := testbin.Dir()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		spec framework.ProviderSpec
	}{
		{"in-process", framework.ProviderSpec{Impl: totpprovider.New()}},
		{"plugin", framework.ProviderSpec{Binary: filepath.Join(dir, "twofactor-provider-totp")}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			spec := mode.spec
			spec.Name, spec.Clients, spec.Settings = "totp", true, sdk.Settings{"issuer": "Bench"}
			fw, code := replayEnv(b, spec)
			in := framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Code: code}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := fw.Verify(ctx, in)
				if err != nil || res.Outcome != sdk.Deny || res.Reason != sdk.ReasonReplayed {
					b.Fatalf("Verify = %+v, %v; want deny replayed", res, err)
				}
			}
		})
	}
}

// replayEnv is a framework on a fresh SQLite file with alice enrolled and
// the code she confirmed with, which every later verify replays.
func replayEnv(b *testing.B, spec framework.ProviderSpec) (*framework.Framework, string) {
	b.Helper()
	now := time.Date(2030, time.March, 4, 5, 6, 0, 0, time.UTC)
	store, err := sqlite.Create(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	fw, err := framework.New(context.Background(), framework.Options{
		Store: store, EncryptionKey: benchKey[:], Now: func() time.Time { return now },
		Logger:    hclog.NewNullLogger(),
		Lockout:   framework.LockoutPolicy{FreeAttempts: math.MaxInt32, MaxFailures: math.MaxInt32},
		Providers: []framework.ProviderSpec{spec},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fw.Close() })
	res, err := fw.BeginEnrollment(context.Background(), framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient})
	if err != nil {
		b.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(res.Display.OTPAuthURL)
	if err != nil {
		b.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), now, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.Fatal(err)
	}
	if c, err := fw.ConfirmEnrollment(context.Background(), "alice", "totp", code); err != nil || c.Status != framework.StatusActive {
		b.Fatalf("confirm = %+v, %v", c, err)
	}
	return fw, code
}

// benchKey is a fixed encryption key that is not a pattern framework.New
// refuses.
var benchKey = sha256.Sum256([]byte("twofactor plugincall bench encryption key"))
