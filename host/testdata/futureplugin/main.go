// Command futureplugin is a provider plugin from the future: it offers
// only a protocol version newer than any this host speaks
// (sdk.ProtocolVersion+1), behind the same handshake cookie. The host
// must refuse it, naming both sides' versions.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// future stands for a provider service of that version; the host never gets
// far enough to call it.
type future struct{ plugin.NetRPCUnsupportedPlugin }

func (future) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (future) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdkplugin.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion + 1: {"provider": future{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
