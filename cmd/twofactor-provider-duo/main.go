// Command twofactor-provider-duo is the Duo provider plugin (Duo Auth API
// v2: passcodes and Duo Push). The host starts it; run by hand it explains
// that and exits.
package main

import (
	"github.com/twofactor/twofactor/providers/duo"
	"github.com/twofactor/twofactor/sdk"
)

func main() {
	sdk.Serve(duo.New(duo.WithLogger(sdk.Logger())))
}
