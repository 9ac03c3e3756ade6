// Command v2plugin is a provider plugin from the future: it offers only
// protocol version 2 of the twofactor wire, behind the same handshake
// cookie. A host that speaks version 1 must refuse it, naming both.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk"
)

// future stands for a version 2 provider service; the host never gets
// far enough to call it.
type future struct{ plugin.NetRPCUnsupportedPlugin }

func (future) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (future) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{2: {"provider": future{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
