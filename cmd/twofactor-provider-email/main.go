// Command twofactor-provider-email is the email-code provider plugin. The
// host starts it; run by hand it explains that and exits.
package main

import (
	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/sdk"
)

func main() {
	sdk.Serve(email.New(email.WithLogger(sdk.Logger())))
}
