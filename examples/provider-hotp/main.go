// Command twofactor-provider-hotp is a twofactor provider for RFC 4226 HOTP
// codes: counter-based one-time passwords from hardware tokens (press the
// button, type the code) and from authenticator apps in counter mode.
//
// It is written only against the SDK (github.com/twofactor/twofactor/sdk),
// as a third-party provider would be; docs/writing-a-provider.md walks
// through it. The host starts this binary; run by hand it says so and
// exits.
package main

import "github.com/twofactor/twofactor/sdk"

func main() {
	sdk.Serve(New(WithLogger(sdk.Logger())))
}
