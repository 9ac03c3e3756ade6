// Command good is a correct provider: the conformance kit must pass it.
package main

import (
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() { sdk.Serve(fake.New()) }
