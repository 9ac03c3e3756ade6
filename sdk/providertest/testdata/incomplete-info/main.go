// Command incomplete-info is a deliberately broken provider: its Info has
// no version and a setting without help text. The kit must fail rule
// info-complete.
package main

import (
	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() { sdk.Serve(fake.IncompleteInfo()) }
