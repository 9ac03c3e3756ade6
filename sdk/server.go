package sdk

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// server exposes a Provider over the twofactor.v1 gRPC service.
type server struct {
	pb.UnimplementedProviderServiceServer
	impl    Provider
	log     hclog.Logger // nil: Logger()
	version int          // the protocol version negotiated with the host
}

func (s *server) logger() hclog.Logger {
	if s.log == nil {
		return Logger()
	}
	return s.log
}

// guard turns a panic in provider code into an internal error so one bad
// input cannot kill the plugin process and every user's logins with it.
func (s *server) guard(err *error) {
	if r := recover(); r != nil {
		s.logger().Error("provider panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = toStatus(Errorf(KindInternal, "provider panicked"))
	}
}

// deadlineGrace is how long a provider method may go on running after its
// context ended before the plugin logs, at warn level, that the method
// ignored its deadline. The host stopped waiting when the context ended;
// a method that runs on holds resources for an answer no one will read.
const deadlineGrace = 2 * time.Second

// ignoredDeadlineMessage starts the log line of a method that ignored its
// deadline; the conformance kit (providertest) looks for this exact text.
const ignoredDeadlineMessage = "provider ignored its deadline"

// watchDeadline logs ignoredDeadlineMessage if the method is still running
// deadlineGrace after ctx ended. Call the returned function when the method
// returns. It costs nothing unless ctx ends first.
func (s *server) watchDeadline(ctx context.Context, method string) (returned func()) {
	var done atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(deadlineGrace, func() {
			if !done.Load() {
				s.logger().Warn(ignoredDeadlineMessage+": the call is still running after the host stopped waiting; pass ctx to every blocking call",
					"method", method, "grace", deadlineGrace.String())
			}
		})
	})
	return func() { done.Store(true); stop() }
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (resp *pb.InfoResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Info")()
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info, s.version), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (resp *pb.ConfigureResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Configure")()
	if err := s.impl.Configure(ctx, Settings(req.GetSettings())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Activate(ctx context.Context, _ *pb.ActivateRequest) (resp *pb.ActivateResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Activate")()
	a, err := s.impl.Activate(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return activationToPB(a), nil
}

func (s *server) Enroll(ctx context.Context, req *pb.EnrollRequest) (resp *pb.EnrollResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Enroll")()
	r, err := s.impl.Enroll(ctx, enrollReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return enrollRespToPB(r), nil
}

func (s *server) Verify(ctx context.Context, req *pb.VerifyRequest) (resp *pb.VerifyResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Verify")()
	r, err := s.impl.Verify(ctx, verifyReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return verifyRespToPB(r), nil
}

// Challenge serves protocol version 2's challenge step. A provider without
// one answers KindUnsupported: the host only calls it for a factor the
// provider listed in Capabilities.Challenges.
func (s *server) Challenge(ctx context.Context, req *pb.ChallengeRequest) (resp *pb.ChallengeResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Challenge")()
	c, ok := s.impl.(Challenger)
	if !ok {
		return nil, toStatus(Errorf(KindUnsupported, "provider has no challenge step"))
	}
	r, err := c.Challenge(ctx, challengeReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return challengeRespToPB(r), nil
}
