// Command twofactor is the two-factor host: the HTTP service and the admin
// commands.
package main

import (
	"os"

	"github.com/twofactor/twofactor/host"
)

func main() {
	os.Exit(host.Main(os.Args[1:], os.Stdout, os.Stderr))
}
