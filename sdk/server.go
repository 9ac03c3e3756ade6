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

// deadlineWatch logs ignoredDeadlineMessage if a method is still running
// deadlineGrace after its context ended (watchDeadline).
type deadlineWatch struct {
	s      *server
	method string
	done   atomic.Bool
	timer  *time.Timer // when the context has a deadline
	stop   func() bool // the context.AfterFunc otherwise
}

// watchDeadline starts watching a method's context. Defer the returned
// watch's returned method.
//
// The host always sets a deadline, and then one timer at deadline plus
// grace is the whole watch: registering with the call's context
// (context.AfterFunc) instead cost the plugin about 2 µs and 8 of 13
// allocations per Verify (BenchmarkServerVerify in sdk/plugin). A context
// cancelled before its deadline (the host gave up early) is then reported
// from its deadline on rather than from its cancellation: later, never
// wrongly. A context without a deadline is watched for its end.
func (s *server) watchDeadline(ctx context.Context, method string) *deadlineWatch {
	w := &deadlineWatch{s: s, method: method}
	if d, ok := ctx.Deadline(); ok {
		w.timer = time.AfterFunc(time.Until(d)+deadlineGrace, w.check)
	} else {
		w.stop = context.AfterFunc(ctx, func() { time.AfterFunc(deadlineGrace, w.check) })
	}
	return w
}

// check logs if the method has not returned.
func (w *deadlineWatch) check() {
	if !w.done.Load() {
		w.s.logger().Warn(ignoredDeadlineMessage+": the call is still running after the host stopped waiting; pass ctx to every blocking call",
			"method", w.method, "grace", deadlineGrace.String())
	}
}

// returned ends the watch: the method returned.
func (w *deadlineWatch) returned() {
	w.done.Store(true)
	if w.timer != nil {
		w.timer.Stop()
	} else {
		w.stop()
	}
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (resp *pb.InfoResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Info").returned()
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info, s.version), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (resp *pb.ConfigureResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Configure").returned()
	if err := s.impl.Configure(ctx, Settings(req.GetSettings())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Activate(ctx context.Context, _ *pb.ActivateRequest) (resp *pb.ActivateResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Activate").returned()
	a, err := s.impl.Activate(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return activationToPB(a), nil
}

func (s *server) Enroll(ctx context.Context, req *pb.EnrollRequest) (resp *pb.EnrollResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Enroll").returned()
	r, err := s.impl.Enroll(ctx, enrollReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return enrollRespToPB(r), nil
}

func (s *server) Verify(ctx context.Context, req *pb.VerifyRequest) (resp *pb.VerifyResponse, err error) {
	defer s.guard(&err)
	defer s.watchDeadline(ctx, "Verify").returned()
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
	defer s.watchDeadline(ctx, "Challenge").returned()
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
