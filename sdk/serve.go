package sdk

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// Serve runs p as a provider plugin: it performs the go-plugin handshake
// with the host that started this process, serves the contract over gRPC
// (with the host's mutual TLS when the host asks for it) and returns only
// when the host ends the plugin. Call it from main and do nothing else
// there: stdout belongs to the handshake.
func Serve(p Provider) {
	// The logger is made before plugin.Serve, which points os.Stderr at a
	// stream the host discards: lines logged through it (a recovered panic,
	// a method that ignores its deadline) reach the host's log.
	log := Logger()
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
