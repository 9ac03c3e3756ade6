package sdk

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// client is the host side of the wire: a Provider backed by a plugin
// process.
type client struct {
	rpc     pb.ProviderServiceClient
	version int // the negotiated protocol version
}

var (
	_ Provider   = (*client)(nil)
	_ Challenger = (*client)(nil)
)

// NegotiatedProtocol returns the wire protocol version a plugin-backed
// Provider (from Dispense) negotiated, or 0 for a Provider in this process.
func NegotiatedProtocol(p Provider) int {
	if c, ok := p.(*client); ok {
		return c.version
	}
	return 0
}

// ClientConfig returns the go-plugin configuration a host uses to start the
// provider binary cmd: this SDK's handshake and protocol versions, gRPC
// only, and mutual TLS generated per process. The caller may add a
// SecureConfig (to pin the binary's SHA-256) before calling
// plugin.NewClient.
func ClientConfig(cmd *exec.Cmd, logger hclog.Logger) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(nil, nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     15 * time.Second,
	}
}

// offeredVersion finds the plugin's version in go-plugin's refusal of a
// plugin whose protocol versions the host does not speak ("incompatible API
// version with plugin. Plugin version: 2, Client versions: [1]").
var offeredVersion = regexp.MustCompile(`Plugin version: (\d+)`)

// Dispense completes the connection to a started plugin and returns the
// Provider it serves. It fails if the plugin negotiated a protocol version
// this host does not speak, with an error naming both versions.
func Dispense(c *plugin.Client) (Provider, error) {
	rpc, err := c.Client()
	if err != nil {
		if m := offeredVersion.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("provider plugin speaks protocol version %s; this host speaks %s "+
				"(build the provider with an SDK that serves one of them): %w", m[1], hostVersions(), err)
		}
		return nil, fmt.Errorf("connect to provider plugin: %w", err)
	}
	if v := c.NegotiatedVersion(); v < MinProtocolVersion || v > ProtocolVersion {
		return nil, fmt.Errorf("provider plugin speaks protocol version %d; this host speaks %s", v, hostVersions())
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense provider plugin: %w", err)
	}
	p, ok := raw.(Provider)
	if !ok {
		return nil, fmt.Errorf("provider plugin returned %T, not a Provider", raw)
	}
	return p, nil
}

// hostVersions names the protocol versions this host speaks, for errors.
func hostVersions() string {
	if MinProtocolVersion == ProtocolVersion {
		return fmt.Sprintf("protocol version %d", ProtocolVersion)
	}
	return fmt.Sprintf("protocol versions %d to %d", MinProtocolVersion, ProtocolVersion)
}

func (c *client) Info(ctx context.Context) (Info, error) {
	r, err := c.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, fromStatus(err)
	}
	return infoFromPB(r), nil
}

func (c *client) Configure(ctx context.Context, s Settings) error {
	_, err := c.rpc.Configure(ctx, &pb.ConfigureRequest{Settings: s})
	return fromStatus(err)
}

func (c *client) Activate(ctx context.Context) (Activation, error) {
	r, err := c.rpc.Activate(ctx, &pb.ActivateRequest{})
	if err != nil {
		return Activation{}, fromStatus(err)
	}
	return activationFromPB(r), nil
}

func (c *client) Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	r, err := c.rpc.Enroll(ctx, enrollReqToPB(req))
	if err != nil {
		return EnrollResponse{}, fromStatus(err)
	}
	return enrollRespFromPB(r), nil
}

func (c *client) Verify(ctx context.Context, req VerifyRequest) (VerifyResponse, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	r, err := c.rpc.Verify(ctx, verifyReqToPB(req))
	if err != nil {
		return VerifyResponse{}, fromStatus(err)
	}
	return verifyRespFromPB(r), nil
}

// Challenge calls the plugin's challenge step. Over protocol version 1 the
// plugin has none, so the call is refused here without reaching it.
func (c *client) Challenge(ctx context.Context, req ChallengeRequest) (ChallengeResponse, error) {
	if c.version < 2 {
		return ChallengeResponse{}, Errorf(KindUnsupported,
			"provider plugin speaks protocol version %d, which has no challenge step", c.version)
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	r, err := c.rpc.Challenge(ctx, challengeReqToPB(req))
	if err != nil {
		return ChallengeResponse{}, fromStatus(err)
	}
	return challengeRespFromPB(r), nil
}
