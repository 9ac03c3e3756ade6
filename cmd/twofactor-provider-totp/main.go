// Command twofactor-provider-totp is the TOTP provider plugin. The host
// starts it; run by hand it explains that and exits.
package main

import (
	"github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

func main() {
	sdk.Serve(totp.New(totp.WithLogger(sdk.Logger())))
}
