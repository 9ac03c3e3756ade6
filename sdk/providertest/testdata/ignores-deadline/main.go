// Command ignores-deadline is a deliberately broken provider: Activate
// sleeps for five seconds without watching its context. The kit must fail
// rule deadline.
package main

import (
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() { sdk.Serve(fake.IgnoresDeadline()) }
