// Command twofactor is the two-factor host: the HTTP service and the admin
// commands.
//
// TWOFACTOR_CPUPROFILE=FILE writes a CPU profile of the whole command to
// FILE (for `make bench -cpuprofile`; read it with `go tool pprof`). It is
// an environment variable rather than a flag of serve so the diagnostic
// stays out of the host's command line and config.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/twofactor/twofactor/host"
)

func main() {
	stop, err := startCPUProfile(os.Getenv("TWOFACTOR_CPUPROFILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "twofactor: TWOFACTOR_CPUPROFILE:", err)
		os.Exit(1)
	}
	code := host.Main(os.Args[1:], os.Stdout, os.Stderr)
	// host.Main returns after a graceful stop (SIGTERM, SIGINT), so the
	// profile covers the whole run; os.Exit would skip a deferred call.
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "twofactor: TWOFACTOR_CPUPROFILE:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// startCPUProfile starts profiling into path ("" profiles nothing) and
// returns the function that stops and writes it.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
