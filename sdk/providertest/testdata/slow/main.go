// Command slow is a provider plugin whose Verify answers only long after
// its deadline (fake.Slow), for the kit's test that it stops at the first
// deadline miss.
package main

import (
	"sync/atomic"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() { sdk.Serve(fake.Slow(new(atomic.Int32))) }
