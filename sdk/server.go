package sdk

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// server exposes a Provider over the twofactor.v1 gRPC service.
type server struct {
	pb.UnimplementedProviderServiceServer
	impl Provider
}

// guard turns a panic in provider code into an internal error so one bad
// input cannot kill the plugin process and every user's logins with it.
func guard(err *error) {
	if r := recover(); r != nil {
		Logger().Error("provider panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = toStatus(Errorf(KindInternal, "provider panicked"))
	}
}

func (s *server) Info(ctx context.Context, _ *pb.InfoRequest) (resp *pb.InfoResponse, err error) {
	defer guard(&err)
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (resp *pb.ConfigureResponse, err error) {
	defer guard(&err)
	if err := s.impl.Configure(ctx, Settings(req.GetSettings())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Activate(ctx context.Context, _ *pb.ActivateRequest) (resp *pb.ActivateResponse, err error) {
	defer guard(&err)
	a, err := s.impl.Activate(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return activationToPB(a), nil
}

func (s *server) Enroll(ctx context.Context, req *pb.EnrollRequest) (resp *pb.EnrollResponse, err error) {
	defer guard(&err)
	r, err := s.impl.Enroll(ctx, enrollReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return enrollRespToPB(r), nil
}

func (s *server) Verify(ctx context.Context, req *pb.VerifyRequest) (resp *pb.VerifyResponse, err error) {
	defer guard(&err)
	r, err := s.impl.Verify(ctx, verifyReqFromPB(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return verifyRespToPB(r), nil
}
