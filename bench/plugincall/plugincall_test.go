//go:build bench

// Package plugincall measures issue 7's goal 1 in one benchmark run: a
// TOTP Verify through the provider contract (the real plugin binary,
// sdkplugin.ClientConfig: gRPC with AutoMTLS) against a bare go-plugin gRPC echo
// of the same payload size over the same transport, one call at a time
// and with 32 concurrent callers (the concurrency of goal 2).
//
// The echo plugin is this test binary run again (go-plugin's own trick):
// with benchEchoEnv set, TestMain serves the echo plugin instead of
// running tests.
//
//	go test -tags bench -run '^$' -bench . -count 5 ./bench/plugincall/
//
// BenchmarkTransportAB (transport_test.go) compares two transports or two
// builds of the plugin in one run, by CPU and context switches per call
// (Linux /proc); raw_test.go is its experiment of a transport without gRPC.
package plugincall

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/twofactor/twofactor/framework/supervisor"
	"github.com/twofactor/twofactor/internal/testbin"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

const benchEchoEnv = "TWOFACTOR_BENCH_ECHO_PLUGIN"

var echoHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "TWOFACTOR_BENCH_ECHO",
	MagicCookieValue: "echo",
}

func TestMain(m *testing.M) {
	if os.Getenv(benchEchoEnv) == "1" {
		serveRawFromEnv()
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: echoHandshake,
			Plugins:         plugin.PluginSet{"echo": &echoPlugin{}},
			GRPCServer:      echoGRPCServer,
			Logger:          hclog.NewNullLogger(),
		})
		os.Exit(0)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// The echo service is written out by hand (no .proto): one unary method
// taking and returning a BytesValue, so the wire cost is go-plugin's gRPC
// and protobuf alone.
type echoServer interface {
	Echo(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
}

type echoImpl struct{}

func (echoImpl) Echo(_ context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	return in, nil
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "twofactor.bench.Echo",
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if icpt == nil {
				return srv.(echoServer).Echo(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/twofactor.bench.Echo/Echo"}
			return icpt(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(echoServer).Echo(ctx, req.(*wrapperspb.BytesValue))
			})
		},
	}},
}

type echoPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (echoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&echoDesc, echoImpl{})
	return nil
}

func (echoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// startEcho runs the echo plugin with the transport settings of
// sdkplugin.ClientConfig (gRPC only, AutoMTLS as chosen) and the
// environment the supervisor gives a plugin, and returns its connection
// and process id. env is added to the plugin's environment (the gRPC
// settings of BenchmarkTransport, the raw echo's socket); dial are the
// host's half of the gRPC settings.
func startEcho(b *testing.B, mtls bool, env []string, dial ...grpc.DialOption) (*grpc.ClientConn, int) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(supervisor.PluginEnv(), benchEchoEnv+"=1"), env...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  echoHandshake,
		Plugins:          plugin.PluginSet{"echo": &echoPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         mtls,
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     15 * time.Second,
		GRPCDialOptions:  dial,
	})
	b.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rpc.Dispense("echo")
	if err != nil {
		b.Fatal(err)
	}
	return raw.(*grpc.ClientConn), client.ReattachConfig().Pid
}

// verifyRequest is what BenchmarkProviderVerify in framework sends: a
// valid code against a state whose last step is 0, so every call is an
// allow computing the same codes; the new state is thrown away.
func verifyRequest(b *testing.B) sdk.VerifyRequest {
	b.Helper()
	ctx := context.Background()
	local := totpprovider.New()
	if err := local.Configure(ctx, sdk.Settings{"issuer": "Example Billing"}); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2030, time.March, 4, 5, 6, 0, 0, time.UTC)
	begin, err := local.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(begin.Display.OTPAuthURL)
	if err != nil {
		b.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), now, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.Fatal(err)
	}
	return sdk.VerifyRequest{User: sdk.User{ID: "alice"}, State: begin.State, Code: code, Now: now}
}

// payloadSize approximates the protobuf size of the Verify request and of
// its allow answer (they are within a few bytes of each other): the state
// plus user {id: "alice"} (9 bytes), code (8), now_unix_nano (10) for the
// request; outcome "allow" (7), state_set (2) and details {step_offset:
// "0"} (18) for the answer. The echo sends this many bytes each way.
func payloadSize(req sdk.VerifyRequest) int { return len(req.State) + 2 + 27 }

// echoPayload is the echo's message: the size of a Verify's.
func echoPayload(b *testing.B) *wrapperspb.BytesValue {
	return &wrapperspb.BytesValue{Value: make([]byte, payloadSize(verifyRequest(b)))}
}

// echoCall is one echo of payload on conn.
func echoCall(conn *grpc.ClientConn, payload *wrapperspb.BytesValue) func() error {
	return func() error {
		out := new(wrapperspb.BytesValue)
		if err := conn.Invoke(context.Background(), "/twofactor.bench.Echo/Echo", payload, out); err != nil {
			return err
		}
		if len(out.Value) != len(payload.Value) {
			return fmt.Errorf("echo returned %d bytes, want %d", len(out.Value), len(payload.Value))
		}
		return nil
	}
}

// callers is the concurrency of goal 2's HTTP figure.
const callers = 32

// parallel runs f from callers goroutines: RunParallel starts
// SetParallelism × GOMAXPROCS of them (rounded up when callers is not a
// multiple of GOMAXPROCS).
func parallel(b *testing.B, f func() error) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((callers + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPluginCall: "echo" is the bare go-plugin gRPC call of the
// Verify payload's size, "verify" the TOTP Verify through the provider
// contract; seq is one caller, c=32 thirty-two. ns/op of a c=32 run is
// wall time per call, so 1e9/ns/op is calls per second. Wall time on a
// shared machine is mostly other people's load: each run also reports
// the CPU and context switches per call of the host (this process) and
// of the plugin (meter).
func BenchmarkPluginCall(b *testing.B) {
	req := verifyRequest(b)
	payload := &wrapperspb.BytesValue{Value: make([]byte, payloadSize(req))}
	ctx := context.Background()
	echo := func(conn *grpc.ClientConn) func() error { return echoCall(conn, payload) }
	verify := func(p sdk.Provider) func() error {
		return func() error {
			res, err := p.Verify(ctx, req)
			if err != nil {
				return err
			}
			if res.Outcome != sdk.Allow {
				return fmt.Errorf("Verify = %+v, want allow", res)
			}
			return nil
		}
	}
	cases := []struct {
		name  string
		start func(*testing.B) (func() error, int)
	}{
		{"echo-mtls", func(b *testing.B) (func() error, int) { c, pid := startEcho(b, true, nil); return echo(c), pid }},
		{"echo-plain", func(b *testing.B) (func() error, int) { c, pid := startEcho(b, false, nil); return echo(c), pid }},
		{"verify-mtls", func(b *testing.B) (func() error, int) { p, pid := startProvider(b); return verify(p), pid }},
	}
	for _, c := range cases {
		b.Run(c.name+"/seq", func(b *testing.B) {
			f, pid := c.start(b)
			if err := f(); err != nil { // warm: connection, TLS session
				b.Fatal(err)
			}
			b.ReportAllocs()
			stop := meter(b, pid)
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
		if c.name == "echo-plain" {
			continue // the transport the provider uses is echo-mtls
		}
		b.Run(fmt.Sprintf("%s/c=%d", c.name, callers), func(b *testing.B) {
			f, pid := c.start(b)
			if err := f(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			stop := meter(b, pid)
			parallel(b, f)
			stop()
		})
	}
}

// startProvider runs the real TOTP plugin binary as the host does
// (sdkplugin.Prepare: gRPC with AutoMTLS, Verify over the side channel;
// the supervisor's environment) and returns it and its process id.
func startProvider(b *testing.B) (sdk.Provider, int) { return startProviderWith(b, "", false, false) }

// startProviderWith runs the TOTP plugin binary bin (the one testbin
// builds if empty), dialled without the SDK's own gRPC settings if
// defaultGRPC (to compare with a build from before them), with Verify on
// gRPC if grpcOnly (the host's switch, sdkplugin.EnvFastPath, at off).
func startProviderWith(b *testing.B, bin string, defaultGRPC, grpcOnly bool) (sdk.Provider, int) {
	b.Helper()
	ours := bin == "" // built from this tree: it serves the side channel
	if ours {
		dir, err := testbin.Dir()
		if err != nil {
			b.Fatal(err)
		}
		bin = filepath.Join(dir, "twofactor-provider-totp")
	}
	cmd := exec.Command(bin)
	cmd.Env = supervisor.PluginEnv()
	if grpcOnly {
		// Prepare reads the switch; the other side of an A/B must not.
		old, had := os.LookupEnv(sdkplugin.EnvFastPath)
		os.Setenv(sdkplugin.EnvFastPath, "off")
		defer func() {
			if had {
				os.Setenv(sdkplugin.EnvFastPath, old)
			} else {
				os.Unsetenv(sdkplugin.EnvFastPath)
			}
		}()
	}
	launch := sdkplugin.Prepare(cmd, hclog.NewNullLogger())
	cfg := launch.Config
	if defaultGRPC {
		cfg.GRPCDialOptions = nil
	}
	client := plugin.NewClient(cfg)
	b.Cleanup(func() { client.Kill(); launch.Close() })
	p, err := launch.Dispense(client)
	if err != nil {
		b.Fatal(err)
	}
	if ours && sdkplugin.FastPath(p) == grpcOnly {
		b.Fatalf("Verify over the side channel: %v, want %v", sdkplugin.FastPath(p), !grpcOnly)
	}
	if err := p.Configure(context.Background(), sdk.Settings{"issuer": "Example Billing"}); err != nil {
		b.Fatal(err)
	}
	return p, client.ReattachConfig().Pid
}

// BenchmarkPluginCallPaired is goal 1's ratio measured in pairs: each
// iteration makes one bare echo call and one Verify through the contract,
// back to back, each timed, so a change in the machine's background load
// hits both sides alike. It reports the mean of each and their ratio;
// ns/op is the pair.
func BenchmarkPluginCallPaired(b *testing.B) {
	req := verifyRequest(b)
	payload := &wrapperspb.BytesValue{Value: make([]byte, payloadSize(req))}
	ctx := context.Background()
	conn, _ := startEcho(b, true, nil)
	p, _ := startProvider(b)
	call := echoCall(conn, payload)
	echo := func() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	verify := func() {
		res, err := p.Verify(ctx, req)
		if err != nil || res.Outcome != sdk.Allow {
			b.Fatalf("Verify = %+v, %v", res, err)
		}
	}
	echo() // warm both connections
	verify()
	var echoT, verifyT time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		echo()
		t1 := time.Now()
		verify()
		verifyT += time.Since(t1)
		echoT += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(echoT.Nanoseconds())/float64(n), "echo-ns/call")
	b.ReportMetric(float64(verifyT.Nanoseconds())/float64(n), "verify-ns/call")
	b.ReportMetric(float64(verifyT)/float64(echoT), "verify/echo")
}
