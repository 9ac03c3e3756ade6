package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest"
)

// nextCode is the code the user's token shows next for the enrollment in
// state; HOTP ignores the time.
func nextCode(state []byte, _ time.Time) (string, error) {
	e, err := parseState(state)
	if err != nil {
		return "", err
	}
	return e.codeAt(e.counter + 1), nil
}

// TestConformance runs the SDK's conformance kit against the provider in
// this process and against the built binary, as the host runs it.
func TestConformance(t *testing.T) {
	settings := sdk.Settings{"issuer": "ACME"}
	opts := providertest.Options{Code: nextCode}
	t.Run("in-process", func(t *testing.T) {
		providertest.Run(t, providertest.InProcess(New()), settings, opts)
	})
	t.Run("binary", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "twofactor-provider-hotp")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		providertest.Run(t, providertest.Binary(bin), settings, opts)
	})
}
