package plugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// The two ends of a Verify without the transport between them: what the
// SDK's own code (conversion, the plugin's guards) costs per call, apart
// from gRPC's. bench/plugincall measures the whole hop.

// allowResponse is a TOTP allow as the provider answers it.
var allowResponse = sdk.VerifyResponse{Outcome: sdk.Allow, Message: "code accepted",
	State: []byte("0123456789abcdef0123456789abcdef0123456789"), Details: map[string]string{"step_offset": "0"}}

var verifyRequest = sdk.VerifyRequest{User: sdk.User{ID: "alice"}, State: []byte("0123456789abcdef0123456789abcdef0123456789"),
	Code: "123456", Now: time.Unix(1700000000, 0)}

// BenchmarkServerVerify is the plugin's side: the gRPC handler of Verify
// called as gRPC calls it, each call in a context of its own with the
// host's deadline (the context's cost is gRPC's, but it is in the figure).
func BenchmarkServerVerify(b *testing.B) {
	srv := wire.NewServer(&echoProvider{verifyResp: allowResponse}, sdk.ProtocolVersion)
	req := verifyReqToPB(verifyRequest)
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		if _, err := srv.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

// verifyRPC answers every Verify with the same wire response.
type verifyRPC struct {
	pb.ProviderServiceClient
	resp *pb.VerifyResponse
}

func (v verifyRPC) Verify(context.Context, *pb.VerifyRequest, ...grpc.CallOption) (*pb.VerifyResponse, error) {
	return v.resp, nil
}

// BenchmarkClientVerify is the host's side: Provider.Verify of a plugin
// client whose transport answers at once.
func BenchmarkClientVerify(b *testing.B) {
	c := newClient(verifyRPC{resp: &pb.VerifyResponse{Outcome: "allow", Message: "code accepted", StateSet: true,
		State: allowResponse.State, Details: allowResponse.Details}}, sdk.ProtocolVersion).(sdk.Provider)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Verify(ctx, verifyRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastPathVerify is the whole side channel in one process: the
// host's pool, the socket, the plugin's connection loop and handler, one
// call at a time, with the host's deadline.
func BenchmarkFastPathVerify(b *testing.B) {
	path, ln := listen(b)
	go fastpath.Serve(ln, os.Getpid(), wire.NewServer(&echoProvider{verifyResp: allowResponse}, sdk.ProtocolVersion).Verify, hclog.NewNullLogger())
	pool := newFastPool(path, os.Getpid(), hclog.NewNullLogger())
	defer pool.close()
	c := &client{version: sdk.ProtocolVersion, fast: pool}
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := c.Verify(ctx, verifyRequest); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
