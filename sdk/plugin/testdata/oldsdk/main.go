// Command oldsdk is a provider as an SDK built before the Verify side
// channel serves it: the host's socket variable is ignored.
package main

import (
	"os"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/providertest/testdata/fake"
)

func main() {
	os.Unsetenv("TWOFACTOR_VERIFY_SOCKET")
	sdk.Serve(fake.New())
}
