// Command twofactor is the two-factor host: the HTTP service and the admin
// commands.
//
// TF_CPUPROFILE=FILE writes a CPU profile of the whole command to
// FILE (for `make bench -cpuprofile`; read it with `go tool pprof`). It is
// an environment variable rather than a flag of serve so the diagnostic
// stays out of the host's command line and config; not TWOFACTOR_…, which
// the config loader reads as config keys (and refuses unknown ones).
//
// TF_TIMERSLACK=NS sets the threads' timer slack (timerslack.go; default
// 1 ms unless the process inherited a slack other than the kernel's).
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/twofactor/twofactor/host/cli"
)

func main() {
	if err := setTimerSlack(); err != nil {
		fmt.Fprintln(os.Stderr, "twofactor:", err)
		os.Exit(1)
	}
	stop, err := startCPUProfile(os.Getenv("TF_CPUPROFILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "twofactor: TF_CPUPROFILE:", err)
		os.Exit(1)
	}
	code := cli.Main(os.Args[1:], os.Stdout, os.Stderr)
	// cli.Main returns after a graceful stop (SIGTERM, SIGINT), so the
	// profile covers the whole run; os.Exit would skip a deferred call.
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "twofactor: TF_CPUPROFILE:", err)
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
