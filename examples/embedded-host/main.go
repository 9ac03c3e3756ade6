// Command embedded-host is the smallest host application: it uses package
// framework directly, with no HTTP service, to enroll a user in TOTP and
// verify a login. The TOTP provider runs in this process; a provider
// plugin would be a ProviderSpec with Binary set instead of Impl.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

func main() {
	dir, err := os.MkdirTemp("", "embedded-host-")
	if err == nil {
		defer os.RemoveAll(dir)
		_, err = run(context.Background(), os.Stdout, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded-host:", err)
		os.Exit(1)
	}
}

// run enrolls alice, confirms with the code her app would show, and
// verifies her next login; the SQLite database lives in dir.
func run(ctx context.Context, out io.Writer, dir string) (framework.VerifyResult, error) {
	// Create: this example starts with an empty store on purpose. An
	// application reopening its store calls sqlite.Open, which refuses a
	// missing or never-initialized database instead of serving everyone as
	// not enrolled.
	store, err := sqlite.Create(ctx, filepath.Join(dir, "twofactor.db"))
	if err != nil {
		return framework.VerifyResult{}, err
	}
	defer store.Close()
	// A real application loads this key from its secrets: losing it loses
	// every enrollment.
	key := make([]byte, framework.KeySize)
	if _, err := rand.Read(key); err != nil {
		return framework.VerifyResult{}, err
	}
	// The example moves its own clock to the next 30-second code; a real
	// application leaves Now unset (time.Now).
	now := time.Now()
	fw, err := framework.New(ctx, framework.Options{
		Store: store, EncryptionKey: key, Now: func() time.Time { return now },
		Providers: []framework.ProviderSpec{{
			Name: "totp", Clients: true, Settings: sdk.Settings{"issuer": "ACME"}, Impl: totp.New(),
		}},
	})
	if err != nil {
		return framework.VerifyResult{}, err
	}
	defer fw.Close()

	en, err := fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient})
	if err != nil {
		return framework.VerifyResult{}, err
	}
	fmt.Fprintln(out, "show alice this QR code or URL:", en.Display.OTPAuthURL)
	app, err := otp.NewKeyFromURL(en.Display.OTPAuthURL) // stands in for her phone
	if err != nil {
		return framework.VerifyResult{}, err
	}
	code, _ := otptotp.GenerateCode(app.Secret(), now)
	conf, err := fw.ConfirmEnrollment(ctx, "alice", "totp", code)
	if err != nil {
		return framework.VerifyResult{}, err
	}
	fmt.Fprintf(out, "confirmed: %s, %d recovery codes to show once\n", conf.Status, len(conf.RecoveryCodes))

	now = now.Add(30 * time.Second) // the confirmation code is spent
	code, _ = otptotp.GenerateCode(app.Secret(), now)
	res, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Code: code})
	if err != nil {
		return framework.VerifyResult{}, err
	}
	fmt.Fprintf(out, "login: %s %s\n", res.Outcome, res.Reason)
	res2, err := fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceClient, Code: code})
	if err != nil {
		return framework.VerifyResult{}, err
	}
	fmt.Fprintf(out, "same code again: %s %s\n", res2.Outcome, res2.Reason)
	return res, nil
}
