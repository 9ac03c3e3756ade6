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
	impl    Provider     // nil on the host side
	log     hclog.Logger // the plugin's log; nil on the host side
	version int          // the protocol version this set serves
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterProviderServiceServer(s, &server{impl: p.impl, log: p.log})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &client{rpc: pb.NewProviderServiceClient(c), version: p.version}, nil
}

// pluginSets lists the plugin sets per protocol version; a new wire version
// is added here beside the old ones, never in their place. Every version
// is the same gRPC service (a later version only adds methods), so a
// plugin serves them all and the host remembers which one was negotiated
// to know which methods it may call.
func pluginSets(impl Provider, log hclog.Logger) map[int]plugin.PluginSet {
	sets := make(map[int]plugin.PluginSet, ProtocolVersion-MinProtocolVersion+1)
	for v := MinProtocolVersion; v <= ProtocolVersion; v++ {
		sets[v] = plugin.PluginSet{pluginName: &grpcPlugin{impl: impl, log: log, version: v}}
	}
	return sets
}
