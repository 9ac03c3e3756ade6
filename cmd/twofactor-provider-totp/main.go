// Command twofactor-provider-totp is the TOTP provider as a plugin binary for
// the twofactor host.
package main

import (
	"github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

func main() { sdk.Serve(totp.New()) }
