package providertest_test

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest"
)

// newProvider stands for the constructor of the provider under test, and
// codeFor for a function of its test that computes the code a user's
// device shows for a state (the test knows the provider's state format).
var (
	newProvider func() sdk.Provider
	codeFor     func(state []byte, now time.Time) (string, error)
)

// conformance is the body of TestConformance in the provider's package.
func conformance(t *testing.T) {
	settings := sdk.Settings{"issuer": "ACME"}
	opts := providertest.Options{Code: codeFor}
	t.Run("in-process", func(t *testing.T) {
		providertest.Run(t, providertest.InProcess(newProvider()), settings, opts)
	})
	t.Run("binary", func(t *testing.T) {
		// Built by the Makefile or by the test itself with go build.
		providertest.Run(t, providertest.Binary("bin/twofactor-provider-acme"), settings, opts)
	})
}

func ExampleRun() {
	// In the provider's own package, in a _test.go file:
	//
	//	func TestConformance(t *testing.T) { conformance(t) }
	//
	// go test -run Conformance -v then lists one subtest per rule, and a
	// failure reads like
	//
	//	rule garbage-code: Verify with code empty panicked: runtime error: slice bounds out of range [:6] with length 0
	_ = conformance
}
