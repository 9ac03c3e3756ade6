// Command panics is a deliberately broken provider: Verify panics on a
// code shorter than six bytes. The kit must fail rule garbage-code.
package main

import (
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() { sdk.Serve(fake.Panics()) }
