package main

import (
	"context"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestEmbeddedHost runs the example: alice enrolls, confirms and logs in,
// and the same code is then refused.
func TestEmbeddedHost(t *testing.T) {
	var out strings.Builder
	res, err := run(context.Background(), &out, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != sdk.Allow {
		t.Errorf("login = %+v, want allow", res)
	}
	for _, want := range []string{"otpauth://totp/ACME:alice?", "confirmed: active, 10 recovery codes", "login: allow", "same code again: deny replayed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
