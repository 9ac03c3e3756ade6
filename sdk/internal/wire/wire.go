// Package wire is what both ends of the plugin wire share: the go-plugin
// handshake, the protocol versions and the plugin sets that carry the
// generated gRPC service. The provider's end (package sdk, Serve) and the
// host's end (package sdk/plugin) each import it; it imports neither, so
// the author-facing package never carries the host's client.
package wire

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// The protocol versions this SDK speaks; package sdk exports them as
// sdk.ProtocolVersion and sdk.MinProtocolVersion.
const (
	MaxVersion = 2
	MinVersion = 1
)

// Handshake is the go-plugin handshake shared by host and providers. The
// cookie only stops a provider binary from being run by hand by mistake; it
// is not a security feature and must never change. Its ProtocolVersion is
// go-plugin's fallback for a peer that sends no version list; the versions
// actually offered are the keys of Sets.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  MaxVersion,
	MagicCookieKey:   "PROVIDER_PLUGIN_TWOFACTOR",
	MagicCookieValue: "8c3f0b1e6a9d4e27b5f1c2d3a4e5f60718293a4b",
}

// PluginName is the single plugin a provider binary serves.
const PluginName = "provider"

// Plugin adapts one protocol version of the gRPC service to go-plugin.
// Only gRPC is served: net/rpc is frozen upstream and would tie us to Go.
// The plugin side sets Service, the host side Connect.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Version int
	Service pb.ProviderServiceServer
	Connect func(rpc pb.ProviderServiceClient, version int) any
}

var errWrongSide = errors.New("twofactor plugin set used on the wrong side of the wire")

// GRPCServer registers the provider's service (plugin side).
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Service == nil {
		return errWrongSide
	}
	pb.RegisterProviderServiceServer(s, p.Service)
	return nil
}

// GRPCClient makes the host's client of the service (host side).
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	if p.Connect == nil {
		return nil, errWrongSide
	}
	return p.Connect(pb.NewProviderServiceClient(c), p.Version), nil
}

// Sets lists the plugin sets per protocol version; a new wire version is
// added here beside the old ones, never in their place. Every version is
// the same gRPC service (a later version only adds methods), so a plugin
// serves them all and the host remembers which one was negotiated to know
// which methods it may call. server is nil on the host side, client nil on
// the plugin side.
func Sets(server func(version int) pb.ProviderServiceServer, client func(pb.ProviderServiceClient, int) any) map[int]plugin.PluginSet {
	sets := make(map[int]plugin.PluginSet, MaxVersion-MinVersion+1)
	for v := MinVersion; v <= MaxVersion; v++ {
		p := &Plugin{Version: v, Connect: client}
		if server != nil {
			p.Service = server(v)
		}
		sets[v] = plugin.PluginSet{PluginName: p}
	}
	return sets
}

// window is the static flow-control window of a plugin connection and of
// each call on it, both directions. A call carries a few hundred bytes
// (an enrollment's QR code a few kilobytes), far below it.
const window = 1 << 20

// DialOptions are the gRPC settings of the host's end of the connection,
// ServerOptions the plugin's. A static window turns off gRPC's bandwidth
// estimator, which answers the first data on an idle connection with a
// PING: at one call at a time that was one more frame each way, and a
// wake-up on each side, per call. Measured with bench/plugincall's
// BenchmarkTransportAB (host and plugin CPU from /proc, blocks of calls
// alternated with the old settings, four pairs): a TOTP Verify through the
// plugin took 4–7 % less CPU one call at a time (about 7 µs, and 0.1–0.4
// fewer context switches), 1 % less at 32 concurrent calls. Deadlines,
// keepalive and the transport's security are unchanged.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStaticStreamWindowSize(window), grpc.WithStaticConnWindowSize(window)}
}

// ServerOptions: see DialOptions.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StaticStreamWindowSize(window), grpc.StaticConnWindowSize(window)}
}

// NewServer is set by package sdk when it is loaded: it returns the gRPC
// service serving impl (an sdk.Provider) at a protocol version. The host
// side's own tests (package sdk/plugin) use it to run both ends of the
// wire in one process; nothing else needs it.
var NewServer func(impl any, version int) pb.ProviderServiceServer

// UnixNano is a time on the wire: nanoseconds since the epoch, 0 for the
// zero time (which UnixNano alone would not give back).
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano reads a time from the wire: 0 is the zero time, others UTC.
func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
