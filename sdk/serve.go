package sdk

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk/internal/fastpath"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// Serve runs p as a provider plugin: it performs the go-plugin handshake
// with the host that started this process, serves the contract over gRPC
// (with the host's mutual TLS when the host asks for it) and returns only
// when the host ends the plugin. On Linux, when the host names a socket
// (sdk/plugin's Prepare), Verify is also served there, by the same
// handler, to the host process only. Call it from main and do nothing
// else there: stdout belongs to the handshake.
func Serve(p Provider) {
	// The logger is made before plugin.Serve, which points os.Stderr at a
	// stream the host discards: lines logged through it (a recovered panic,
	// a method that ignores its deadline) reach the host's log.
	log := Logger()
	defer startCPUProfile(log)()
	// Listening before plugin.Serve prints the handshake means the socket
	// is served once the host has dispensed the plugin: served, Verify
	// takes the side channel; not, gRPC.
	if ln := listenFastPath(log); ln != nil {
		defer ln.Close() // removes a socket file; an abstract name dies with the process anyway
		fast := &server{impl: p, log: log, version: wire.MaxVersion}
		go fastpath.Serve(ln, os.Getppid(), fast.Verify, log)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		VersionedPlugins: wire.Sets(func(v int) pb.ProviderServiceServer {
			return &server{impl: p, log: log, version: v}
		}, nil),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, wire.ServerOptions()...)...)
		},
		Logger: log,
	})
}

// listenFastPath listens on the socket the host named for the Verify side
// channel (package internal/fastpath): a path, or on Linux an abstract
// name ("@..."). It returns nil when not asked, not on Linux, or when the
// listen failed (the name already bound by another process, say): then
// Verify goes over gRPC, as for a plugin built before the side channel,
// and the host, finding another process at the name, refuses it.
// Verify's handler is the same for every protocol version, so the version
// the fast path's server carries is moot.
func listenFastPath(log hclog.Logger) net.Listener {
	addr := os.Getenv(fastpath.EnvSocket)
	if addr == "" || !fastpath.Supported {
		return nil
	}
	os.Unsetenv(fastpath.EnvSocket) // not for the provider's own children
	ln, err := net.Listen("unix", addr)
	if err != nil {
		log.Warn("fast path: cannot listen; Verify goes over gRPC", "error", err)
		return nil
	}
	return ln
}

// EnvCPUProfile names, in a plugin's environment, the prefix of the CPU
// profile Serve writes: PREFIX-NAME-PID.prof, NAME the executable's base
// name, for the plugin's whole life (a graceful stop by the host; a
// killed plugin writes none). A plugin inherits the host's environment,
// so one setting profiles every provider; the bench sets it with its
// -cpuprofile, beside the host's own TF_CPUPROFILE. Unset, nothing is
// profiled.
const EnvCPUProfile = "TF_PLUGIN_CPUPROFILE"

// startCPUProfile starts the profile EnvCPUProfile asks for and returns
// the function that writes it out. A profile that cannot be started is
// logged and skipped: a diagnostic never stops a provider.
func startCPUProfile(log hclog.Logger) (stop func()) {
	prefix := os.Getenv(EnvCPUProfile)
	if prefix == "" {
		return func() {}
	}
	exe, _ := os.Executable()
	path := fmt.Sprintf("%s-%s-%d.prof", prefix, filepath.Base(exe), os.Getpid())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		log.Warn("cannot write the CPU profile", "env", EnvCPUProfile, "error", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Warn("cannot start the CPU profile", "env", EnvCPUProfile, "error", err)
		f.Close()
		os.Remove(path)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("cannot write the CPU profile", "path", path, "error", err)
		}
	}
}

func init() {
	wire.NewServer = func(impl any, v int) pb.ProviderServiceServer {
		return &server{impl: impl.(Provider), version: v}
	}
}

// Logger returns the logger a provider should use. It writes hclog JSON to
// stderr, which the host re-emits in its own log under the provider's name.
// Call it before Serve (as in main: sdk.Serve(New(WithLogger(sdk.Logger())))):
// once Serve runs, os.Stderr no longer leads to the host.
// Never log secrets, codes or state.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace, // the host's logger decides what is shown
		Output:     os.Stderr,
		JSONFormat: true,
	})
}
