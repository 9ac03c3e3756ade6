//go:build bench

package plugincall

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/twofactor/twofactor/sdk"
)

// benchTransportEnv names the gRPC settings the echo plugin serves with
// (comma-separated keys of transportSettings); BenchmarkTransportAB sets
// it for each plugin it starts, and reads its own two from the same name
// with _A and _B appended.
const benchTransportEnv = "TWOFACTOR_BENCH_TRANSPORT"

// transportSettings are the gRPC knobs BenchmarkTransportAB compares, each
// applied to both ends. Only "window" measurably cut the CPU of a call;
// the SDK uses it (sdk/internal/wire.DialOptions). Workers and smaller
// buffers made no difference beyond the noise; shared write buffers are
// gRPC's default already.
var transportSettings = map[string]struct {
	dial   []grpc.DialOption
	server []grpc.ServerOption
}{
	// A static window turns off the BDP estimator, which pings the peer
	// after data arrives on an idle connection: one more frame each way
	// per call at low concurrency.
	"window": {
		dial:   []grpc.DialOption{grpc.WithStaticStreamWindowSize(1 << 20), grpc.WithStaticConnWindowSize(1 << 20)},
		server: []grpc.ServerOption{grpc.StaticStreamWindowSize(1 << 20), grpc.StaticConnWindowSize(1 << 20)},
	},
	// Workers reuse goroutines (and their grown stacks) for handlers
	// instead of starting one per call.
	"workers": {server: []grpc.ServerOption{grpc.NumStreamWorkers(1)}},
	// Smaller buffers: a call is a few hundred bytes.
	"bufs": {
		dial:   []grpc.DialOption{grpc.WithReadBufferSize(4096), grpc.WithWriteBufferSize(4096)},
		server: []grpc.ServerOption{grpc.ReadBufferSize(4096), grpc.WriteBufferSize(4096)},
	},
}

// transportOptions returns the dial and server options of a
// comma-separated list of transportSettings keys.
func transportOptions(list string) ([]grpc.DialOption, []grpc.ServerOption, error) {
	var dial []grpc.DialOption
	var server []grpc.ServerOption
	for name := range strings.SplitSeq(list, ",") {
		if name == "" || name == "default" {
			continue
		}
		s, ok := transportSettings[name]
		if !ok {
			return nil, nil, fmt.Errorf("unknown transport setting %q", name)
		}
		dial, server = append(dial, s.dial...), append(server, s.server...)
	}
	return dial, server, nil
}

// echoGRPCServer is the echo plugin's gRPC server, with the settings
// benchTransportEnv names.
func echoGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	_, server, err := transportOptions(os.Getenv(benchTransportEnv))
	if err != nil {
		panic(err) // the benchmark checked the list before it started us
	}
	return grpc.NewServer(append(opts, server...)...)
}

// BenchmarkTransportAB compares two transport settings in one run: two
// echo plugins, A and B (TWOFACTOR_BENCH_TRANSPORT_A and _B, default
// "default" and "window"; "raw" and "raw-mux" are the framed echoes of
// raw_test.go, "verify" and "verify-grpc" the TOTP Verify through the
// contract over the side channel and over gRPC), called in alternating blocks so that a change
// in the machine's load hits both alike. Each iteration is one block of
// abBlock calls to A and one to B; -benchtime 10x makes ten pairs. It
// reports each side's CPU and context switches per call (host and plugin
// together), its wall time per call (per block at c=32, so 1/throughput)
// and B's CPU relative to A's.
func BenchmarkTransportAB(b *testing.B) {
	lists := [2]string{envOr(benchTransportEnv+"_A", "default"), envOr(benchTransportEnv+"_B", "window")}
	payload := echoPayload(b)
	for _, conc := range []int{1, callers} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			var calls [2]func() error
			var pids [2]int
			for i, list := range lists {
				calls[i], pids[i] = startSide(b, list, payload)
				if err := calls[i](); err != nil {
					b.Fatal(err)
				}
			}
			var used [2]usage
			var wall [2]time.Duration
			for b.Loop() {
				for i := range calls {
					t0 := time.Now()
					u, err := block(pids[i], conc, calls[i])
					if err != nil {
						b.Fatal(err)
					}
					wall[i] += time.Since(t0)
					used[i].cpu += u.cpu
					used[i].ctxsw += u.ctxsw
				}
			}
			n := float64(b.N * abBlock)
			for i, side := range []string{"A", "B"} {
				b.ReportMetric(float64(used[i].cpu)/float64(time.Microsecond)/n, side+"-cpu-µs/call")
				b.ReportMetric(float64(used[i].ctxsw)/n, side+"-ctxsw/call")
				b.ReportMetric(float64(wall[i])/float64(time.Microsecond)/n, side+"-wall-µs/call")
			}
			b.ReportMetric(float64(used[1].cpu)/float64(used[0].cpu), "B/A-cpu")
		})
	}
}

// benchOldPluginEnv names the TOTP plugin binary of BenchmarkTransportAB's
// "verify-old" and "verify-old-grpc" sides.
const benchOldPluginEnv = "TWOFACTOR_BENCH_OLD_PLUGIN"

// startSide starts one side of BenchmarkTransportAB: "raw" and "raw-mux"
// are the framed echoes of raw_test.go, "verify", "verify-grpc",
// "verify-old" and "verify-old-grpc" the TOTP plugin, anything else a list of
// transportSettings for the gRPC echo.
func startSide(b *testing.B, list string, payload *wrapperspb.BytesValue) (func() error, int) {
	switch list {
	case "raw":
		return startRaw(b, payload)
	case "raw-mux":
		return startRawMux(b, payload)
	case "verify", "verify-grpc", "verify-old", "verify-old-grpc":
		// The TOTP Verify through the contract: over the plugin's side
		// channel, or gRPC for verify-grpc (the host's switch at off).
		// verify-old is the binary
		// TWOFACTOR_BENCH_OLD_PLUGIN names (a build of the commit to
		// compare with); verify-old-grpc the same dialled with gRPC's
		// default settings instead of the SDK's (a build from before
		// them).
		bin := ""
		if strings.HasPrefix(list, "verify-old") {
			if bin = os.Getenv(benchOldPluginEnv); bin == "" {
				b.Fatalf("%s needs %s", list, benchOldPluginEnv)
			}
		}
		p, pid := startProviderWith(b, bin, list == "verify-old-grpc", list == "verify-grpc")
		req := verifyRequest(b)
		return func() error {
			res, err := p.Verify(context.Background(), req)
			if err == nil && res.Outcome != sdk.Allow {
				err = fmt.Errorf("Verify = %+v, want allow", res)
			}
			return err
		}, pid
	}
	dial, _, err := transportOptions(list)
	if err != nil {
		b.Fatal(err)
	}
	conn, pid := startEcho(b, true, []string{benchTransportEnv + "=" + list}, dial...)
	return echoCall(conn, payload), pid
}

// abBlock is the number of calls in one block of BenchmarkTransportAB.
const abBlock = 2048

// block makes abBlock calls from conc goroutines and returns what the
// host and the plugin pid used for them together.
func block(pid, conc int, call func() error) (usage, error) {
	before, err := bothUsage(pid)
	if err != nil {
		return usage{}, err
	}
	errs := make(chan error, conc)
	for range conc {
		go func() {
			for range abBlock / conc {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range conc {
		if err := <-errs; err != nil {
			return usage{}, err
		}
	}
	after, err := bothUsage(pid)
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: after.cpu - before.cpu, ctxsw: after.ctxsw - before.ctxsw}, nil
}

// bothUsage is this process's usage plus the plugin's.
func bothUsage(pid int) (usage, error) {
	host, err := readUsage(os.Getpid())
	if err != nil {
		return usage{}, err
	}
	plugin, err := readUsage(pid)
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: host.cpu + plugin.cpu, ctxsw: host.ctxsw + plugin.ctxsw}, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
