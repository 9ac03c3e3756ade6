// Command v1plugin is a provider plugin as the released SDK built it:
// it serves only protocol version 1 of the twofactor wire, from the
// version 1 wire definition frozen in pbv1 (generated from
// sdk/internal/pb/provider.proto as released, before protocol 2 added the
// challenge step). It does not import the SDK, so nothing of a newer
// SDK can leak in: a host must keep serving it unchanged.
//
// The factor it offers is a static PIN chosen at enrollment: the test
// reads the PIN from the enrollment display, confirms with it and logs in
// with it.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/host/testdata/v1plugin/pbv1"
)

// handshake is the released SDK's handshake, copied: the cookie never
// changes, and the protocol version is what this plugin was built for.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PROVIDER_PLUGIN_TWOFACTOR",
	MagicCookieValue: "8c3f0b1e6a9d4e27b5f1c2d3a4e5f60718293a4b",
}

type legacy struct {
	pbv1.UnimplementedProviderServiceServer
}

func (legacy) Info(context.Context, *pbv1.InfoRequest) (*pbv1.InfoResponse, error) {
	return &pbv1.InfoResponse{
		Name: "legacy", Version: "1.0.0", ProtocolVersion: 1, Description: "a protocol 1 plugin (test)",
		Capabilities: &pbv1.Capabilities{Code: true, EnrollNeedsConfirmation: true},
	}, nil
}

func (legacy) Configure(context.Context, *pbv1.ConfigureRequest) (*pbv1.ConfigureResponse, error) {
	return &pbv1.ConfigureResponse{}, nil
}

func (legacy) Activate(context.Context, *pbv1.ActivateRequest) (*pbv1.ActivateResponse, error) {
	return &pbv1.ActivateResponse{Health: "healthy"}, nil
}

func (legacy) Enroll(_ context.Context, req *pbv1.EnrollRequest) (*pbv1.EnrollResponse, error) {
	switch req.GetStep() {
	case "begin":
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return nil, err
		}
		pin := fmt.Sprintf("%06d", n.Int64())
		return &pbv1.EnrollResponse{State: []byte(pin), Display: &pbv1.Display{ActivationCode: pin}}, nil
	case "finish":
		if !samePIN(req.GetState(), req.GetCode()) {
			return &pbv1.EnrollResponse{State: req.GetState(), Reason: "invalid_code"}, nil
		}
		return &pbv1.EnrollResponse{State: req.GetState(), Done: true}, nil
	}
	return nil, fmt.Errorf("unknown enrollment step %q", req.GetStep())
}

func (legacy) Verify(_ context.Context, req *pbv1.VerifyRequest) (*pbv1.VerifyResponse, error) {
	if !samePIN(req.GetState(), req.GetCode()) {
		return &pbv1.VerifyResponse{Outcome: "deny", Reason: "invalid_code"}, nil
	}
	return &pbv1.VerifyResponse{Outcome: "allow"}, nil
}

func samePIN(state []byte, code string) bool {
	return len(state) == 6 && subtle.ConstantTimeCompare(state, []byte(code)) == 1
}

// grpcPlugin serves legacy over go-plugin's gRPC transport.
type grpcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pbv1.RegisterProviderServiceServer(s, legacy{})
	return nil
}

func (grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("v1plugin is a server only")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: map[int]plugin.PluginSet{1: {"provider": grpcPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
