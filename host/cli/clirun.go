package cli

// What the command line says about itself and about its failures (issue
// 19): the release and revision it was built from, a fatal error in the
// log's format, and a busy port with the way around it.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/internal/buildinfo"
)

func cmdVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	fmt.Fprintln(stdout, buildinfo.String())
	return nil
}

// jsonFatal is a command's failure under log.format: json: Main prints it
// as one JSON log line, as every other line of that process is.
type jsonFatal struct{ err error }

func (e *jsonFatal) Error() string { return e.err.Error() }
func (e *jsonFatal) Unwrap() error { return e.err }

// inLogFormat marks err to be printed in the log format the config asks
// for, even when the config itself was refused (config.LogFormatOf reads
// log.format from the file and the environment without judging the rest).
func inLogFormat(src config.Source, err error) error {
	if err == nil || config.LogFormatOf(src) != "json" {
		return err
	}
	return &jsonFatal{err}
}

// reportFatal prints a command's failure.
func reportFatal(w io.Writer, err error) {
	if jf, ok := errors.AsType[*jsonFatal](err); ok {
		hclog.New(&hclog.LoggerOptions{Name: "twofactor", Output: w, JSONFormat: true}).Error("fatal", "error", jf.err.Error())
		return
	}
	fmt.Fprintln(w, "twofactor:", err)
}

// listen opens the service's port, naming the way out when it is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is in use (another twofactor, or another service, holds it): "+
			"stop it, or listen elsewhere with --listen ADDR, TWOFACTOR_LISTEN=ADDR or listen: in the config "+
			"(make run LISTEN=127.0.0.1:8741)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
