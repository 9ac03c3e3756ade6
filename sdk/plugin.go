package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// Handshake is the go-plugin handshake shared by host and providers. The
// cookie only stops a provider binary from being run by hand by mistake; it
// is not a security feature and must never change.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PROVIDER_PLUGIN_TWOFACTOR",
	MagicCookieValue: "8c3f0b1e6a9d4e27b5f1c2d3a4e5f60718293a4b",
}

// pluginName is the single plugin a provider binary serves.
const pluginName = "provider"

// grpcPlugin adapts a Provider to go-plugin's GRPCPlugin. Only gRPC is
// served: net/rpc is frozen upstream and would tie us to Go.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Provider     // nil on the host side
	log  hclog.Logger // the plugin's log; nil on the host side
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProviderServiceServer(s, &server{impl: p.impl, log: p.log})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &client{rpc: pb.NewProviderServiceClient(c)}, nil
}

// pluginSets lists the plugin sets per protocol version; a new wire version
// is added here beside the old one, never in its place.
func pluginSets(impl Provider, log hclog.Logger) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {pluginName: &grpcPlugin{impl: impl, log: log}},
	}
}
