package totp

import (
	"encoding/base32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// conformanceCode is what the user's app shows for the enrollment in
// state at now: the kit uses it to check allow and replay.
func conformanceCode(state []byte, now time.Time) (string, error) {
	e, err := parseState(state)
	if err != nil {
		return "", err
	}
	return hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(e.secret), uint64(floorDiv(now.Unix(), e.period)),
		hotp.ValidateOpts{Digits: otp.Digits(e.digits), Algorithm: e.algorithm})
}

// TestConformance runs the SDK's conformance kit against the provider in
// this process and against the built plugin binary, as the host runs it.
func TestConformance(t *testing.T) {
	settings := sdk.Settings{"issuer": "ACME Billing"}
	opts := providertest.Options{Code: conformanceCode}
	t.Run("in-process", func(t *testing.T) {
		providertest.Run(t, providertest.InProcess(New()), settings, opts)
	})
	t.Run("binary", func(t *testing.T) {
		dir, err := testbin.Dir()
		if err != nil {
			t.Fatal(err)
		}
		providertest.Run(t, providertest.Binary(filepath.Join(dir, "twofactor-provider-totp")), settings, opts)
	})
}
