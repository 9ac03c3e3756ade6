// Command twofactor-provider-webauthn is the security key and passkey
// (WebAuthn) provider plugin. The host starts it; run by hand it explains
// that and exits.
package main

import (
	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/sdk"
)

func main() {
	sdk.Serve(webauthn.New(webauthn.WithLogger(sdk.Logger())))
}
