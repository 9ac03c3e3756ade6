package plugin

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// client is the host side of the wire: a Provider backed by a plugin
// process.
type client struct {
	rpc     pb.ProviderServiceClient
	version int       // the negotiated protocol version
	fast    *fastPool // Verify's side channel; nil: gRPC only
}

var (
	_ sdk.Provider   = (*client)(nil)
	_ sdk.Challenger = (*client)(nil)
)

func newClient(rpc pb.ProviderServiceClient, version int) any {
	return &client{rpc: rpc, version: version}
}

func (c *client) Info(ctx context.Context) (sdk.Info, error) {
	r, err := c.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return sdk.Info{}, fromStatus(err)
	}
	return infoFromPB(r), nil
}

func (c *client) Configure(ctx context.Context, s sdk.Settings) error {
	_, err := c.rpc.Configure(ctx, &pb.ConfigureRequest{Settings: s})
	return fromStatus(err)
}

func (c *client) Activate(ctx context.Context) (sdk.Activation, error) {
	r, err := c.rpc.Activate(ctx, &pb.ActivateRequest{})
	if err != nil {
		return sdk.Activation{}, fromStatus(err)
	}
	return activationFromPB(r), nil
}

func (c *client) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	r, err := c.rpc.Enroll(ctx, enrollReqToPB(req))
	if err != nil {
		return sdk.EnrollResponse{}, fromStatus(err)
	}
	return enrollRespFromPB(r), nil
}

func (c *client) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	in := verifyReqToPB(req)
	if c.fast != nil {
		if r, sent, err := c.fast.verify(ctx, in); sent {
			if err != nil {
				return sdk.VerifyResponse{}, err
			}
			return verifyRespFromPB(r), nil
		}
	}
	r, err := c.rpc.Verify(ctx, in)
	if err != nil {
		return sdk.VerifyResponse{}, fromStatus(err)
	}
	return verifyRespFromPB(r), nil
}

// Challenge calls the plugin's challenge step. Over protocol version 1 the
// plugin has none, so the call is refused here without reaching it.
func (c *client) Challenge(ctx context.Context, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	if c.version < 2 {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindUnsupported,
			"provider plugin speaks protocol version %d, which has no challenge step", c.version)
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	r, err := c.rpc.Challenge(ctx, challengeReqToPB(req))
	if err != nil {
		return sdk.ChallengeResponse{}, fromStatus(err)
	}
	return challengeRespFromPB(r), nil
}
