package webauthn_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
	"github.com/twofactor/twofactor/sdk/providertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// TestConformance runs the SDK's conformance kit against the provider in
// this process and against the built plugin binary; a software
// authenticator answers the options the provider hands out.
func TestConformance(t *testing.T) {
	run := func(t *testing.T, target providertest.Target) {
		a := webauthntest.New(origin)
		providertest.Run(t, target, settings(nil), providertest.Options{Answer: a.Answer})
	}
	t.Run("in-process", func(t *testing.T) { run(t, providertest.InProcess(webauthn.New())) })
	t.Run("binary", func(t *testing.T) {
		dir, err := testbin.Dir()
		if err != nil {
			t.Fatal(err)
		}
		run(t, providertest.Binary(filepath.Join(dir, "twofactor-provider-webauthn")))
	})
}
