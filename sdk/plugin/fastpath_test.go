package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
	"github.com/twofactor/twofactor/sdk/internal/pb"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// shortDir is a fresh directory whose path is short enough for a socket
// in it to fit sun_path (t.TempDir's names can be too long).
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// socketPath is a unix socket path in a fresh shortDir.
func socketPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(shortDir(t), "s")
}

// listen listens on a fresh socketPath.
func listen(t testing.TB) (string, net.Listener) {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path, ln
}

// noGRPC is the gRPC client of a fast-path-only Provider: a call that
// falls back to gRPC fails the test.
type noGRPC struct {
	pb.ProviderServiceClient
	t *testing.T
}

func (n noGRPC) Verify(context.Context, *pb.VerifyRequest, ...grpc.CallOption) (*pb.VerifyResponse, error) {
	n.t.Error("Verify fell back to gRPC")
	return nil, errors.New("no gRPC here")
}

// connectFast serves impl's Verify over the side channel in this process
// (the peer to check is this process, at both ends) and returns a
// Provider whose Verify goes only there, with the pool behind it.
func connectFast(t *testing.T, impl sdk.Provider) (sdk.Provider, *fastPool) {
	t.Helper()
	path, ln := listen(t)
	srv := wire.NewServer(impl, sdk.ProtocolVersion)
	done := make(chan struct{})
	go func() { fastpath.Serve(ln, os.Getpid(), srv.Verify, hclog.NewNullLogger()); close(done) }()
	pool := newFastPool(path, os.Getpid(), hclog.NewNullLogger())
	t.Cleanup(func() { pool.close(); ln.Close(); <-done })
	return &client{rpc: noGRPC{t: t}, version: sdk.ProtocolVersion, fast: pool}, pool
}

// blocksUntilDone answers only when its context ends.
type blocksUntilDone struct{ sdk.Provider }

func (blocksUntilDone) Verify(ctx context.Context, _ sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	<-ctx.Done()
	return sdk.VerifyResponse{}, ctx.Err()
}

// TestFastPathMatchesGRPC: for the same provider and request, the side
// channel and gRPC give the same answer or the same error (text, kind,
// field, fix, and what errors.Is finds).
func TestFastPathMatchesGRPC(t *testing.T) {
	now := time.Unix(1700000000, 7).UTC()
	req := sdk.VerifyRequest{User: sdk.User{ID: "u1", AccountName: "a"}, State: []byte("s"), Code: "123456", Factor: "push", TxID: "tx",
		ClientIP: "192.0.2.1", Now: now, TrustToken: "tt", Failures: 2}
	tests := []struct {
		name    string
		impl    sdk.Provider
		timeout time.Duration
	}{
		{"allow with new state", &echoProvider{verifyResp: sdk.VerifyResponse{Outcome: sdk.Allow, State: []byte("next"), Details: map[string]string{"k": "v"}, TrustToken: "r"}}, 0},
		{"keep stored state", &echoProvider{verifyResp: sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode, Message: "no"}}, 0},
		{"store empty state", &echoProvider{verifyResp: sdk.VerifyResponse{Outcome: sdk.Allow, State: []byte{}}}, 0},
		{"pending", &echoProvider{verifyResp: sdk.VerifyResponse{Outcome: sdk.Pending, TxID: "tx2", Unprompted: true}}, 0},
		{"typed error with field and fix", &echoProvider{err: sdk.FieldError(sdk.KindInvalidCredentials, "secret_key", "rejected").WithFix("copy it")}, 0},
		{"backend unavailable", &echoProvider{err: sdk.Errorf(sdk.KindUnavailable, "duo down")}, 0},
		{"untyped error", &echoProvider{err: errors.New("oops")}, 0},
		{"provider's deadline error", &echoProvider{err: context.DeadlineExceeded}, 0},
		{"panic", &echoProvider{panicNow: true}, 0},
		{"host deadline", blocksUntilDone{&echoProvider{}}, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			viaGRPC := connect(t, tt.impl)
			viaFast, _ := connectFast(t, tt.impl)
			call := func(p sdk.Provider) (sdk.VerifyResponse, error) {
				ctx := context.Background()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				return p.Verify(ctx, req)
			}
			gr, gerr := call(viaGRPC)
			fr, ferr := call(viaFast)
			if !reflect.DeepEqual(gr, fr) {
				t.Errorf("answers differ:\n gRPC %+v\n fast %+v", gr, fr)
			}
			// The request arrives whole over the side channel (the
			// second call): every field, the newest too.
			if e, ok := tt.impl.(*echoProvider); ok && e.err == nil && !e.panicNow &&
				(e.gotVerify.Failures != req.Failures || e.gotVerify.TrustToken != req.TrustToken || e.gotVerify.Code != req.Code) {
				t.Errorf("request over the side channel: %+v, sent %+v", e.gotVerify, req)
			}
			if (gerr == nil) != (ferr == nil) || gerr != nil && gerr.Error() != ferr.Error() {
				t.Fatalf("errors differ:\n gRPC %v\n fast %v", gerr, ferr)
			}
			var ge, fe *sdk.Error
			if errors.As(gerr, &ge) != errors.As(ferr, &fe) || ge != nil && *ge != *fe {
				t.Errorf("typed errors differ: gRPC %#v, fast %#v", ge, fe)
			}
			for _, target := range []error{ErrUnreachable, context.DeadlineExceeded, context.Canceled} {
				if errors.Is(gerr, target) != errors.Is(ferr, target) {
					t.Errorf("errors.Is(%v): gRPC %v, fast %v", target, errors.Is(gerr, target), errors.Is(ferr, target))
				}
			}
		})
	}
}

// idProvider answers each user with its own id, to catch crossed answers.
type idProvider struct{ sdk.Provider }

func (idProvider) Verify(_ context.Context, r sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	return sdk.VerifyResponse{Outcome: sdk.Allow, State: []byte(r.User.ID), Message: r.Code}, nil
}

// TestFastPathBurst: 64 simultaneous Verify calls over the side channel
// each get their own answer.
func TestFastPathBurst(t *testing.T) {
	p, pool := connectFast(t, idProvider{})
	const n = 64
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("user-%d", i)
			for j := range 20 {
				code := fmt.Sprint(j)
				r, err := p.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: id}, Code: code})
				if err != nil || string(r.State) != id || r.Message != code {
					errs <- fmt.Errorf("%s call %d: got %q/%q, %v", id, j, r.State, r.Message, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pool.mu.Lock()
	idle := len(pool.idle)
	pool.mu.Unlock()
	if idle > maxIdle {
		t.Errorf("%d idle connections kept, cap %d", idle, maxIdle)
	}
}

// fakePlugin serves the side channel's hellos properly, then answers the
// first connection's first request with bad and every later one with a
// good allow. It counts connections and reports when the host closed the
// first.
type fakePlugin struct {
	path     string
	mu       sync.Mutex
	accepted int
	closed   chan struct{} // the host closed the first connection
}

func startFake(t *testing.T, bad func(c net.Conn)) *fakePlugin {
	t.Helper()
	f := &fakePlugin{closed: make(chan struct{})}
	var ln net.Listener
	f.path, ln = listen(t)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.accepted++
			first := f.accepted == 1
			f.mu.Unlock()
			go f.serve(nc, first, bad)
		}
	}()
	return f
}

func (f *fakePlugin) serve(nc net.Conn, first bool, bad func(net.Conn)) {
	defer nc.Close()
	c := fastpath.NewConn(nc)
	if _, err := c.ReadHello(); err != nil || c.WriteHello() != nil {
		return
	}
	for {
		if _, _, err := c.ReadFrame(); err != nil {
			if first {
				close(f.closed)
			}
			return
		}
		if first {
			bad(nc)
			first = false
			// Whatever bad did, the host must close this connection.
			buf := make([]byte, 64)
			for {
				if _, err := nc.Read(buf); err != nil {
					close(f.closed)
					return
				}
			}
		}
		c.WriteFrame(fastpath.KindOK, nil, &pb.VerifyResponse{Outcome: "allow"})
	}
}

// TestFastPathFailsClosed: an answer that breaks the framing fails the
// call with the gRPC path's error for a broken transport (ErrUnreachable)
// or for an unreadable answer (internal), never an allow; the connection
// is closed, and the next call gets a new one.
func TestFastPathFailsClosed(t *testing.T) {
	frame := func(n uint32, kind byte, body ...byte) []byte {
		return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), kind}, body...)
	}
	tests := []struct {
		name        string
		bad         func(c net.Conn)
		unreachable bool
	}{
		{"garbage", func(c net.Conn) { c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) }, true},
		{"unknown kind", func(c net.Conn) { c.Write(frame(3, 9, 1, 2)) }, true},
		{"short frame then close", func(c net.Conn) { c.Write(frame(100, fastpath.KindOK, 1, 2, 3)); c.(*net.UnixConn).CloseWrite() }, true},
		{"huge length", func(c net.Conn) { c.Write(frame(0xffffffff, fastpath.KindOK)) }, true},
		{"just over the limit", func(c net.Conn) { c.Write(frame(fastpath.MaxFrame+1, fastpath.KindOK)) }, true},
		{"zero length", func(c net.Conn) { c.Write(frame(0, fastpath.KindOK)) }, true},
		{"closed mid-header", func(c net.Conn) { c.Write([]byte{0, 0}); c.(*net.UnixConn).CloseWrite() }, true},
		{"closed without an answer", func(c net.Conn) { c.(*net.UnixConn).CloseWrite() }, true},
		{"a hello where the answer belongs", func(c net.Conn) { fastpath.NewConn(c).WriteHello() }, true},
		{"unreadable answer", func(c net.Conn) { c.Write(frame(4, fastpath.KindOK, 0xff, 0xff, 0xff)) }, false},
		{"unreadable error", func(c net.Conn) { c.Write(frame(4, fastpath.KindError, 0xff, 0xff, 0xff)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.bad)
			pool := newFastPool(f.path, os.Getpid(), hclog.NewNullLogger())
			defer pool.close()
			p := &client{rpc: noGRPC{t: t}, version: sdk.ProtocolVersion, fast: pool}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "u"}, Code: "1"})
			if err == nil || r.Outcome == sdk.Allow {
				t.Fatalf("Verify = %+v, %v; want an error", r, err)
			}
			if got := errors.Is(err, ErrUnreachable); got != tt.unreachable {
				t.Errorf("err = %v; unreachable %v, want %v", err, got, tt.unreachable)
			}
			if !tt.unreachable && sdk.KindOf(err) != sdk.KindInternal {
				t.Errorf("err = %v, want an internal error", err)
			}
			select {
			case <-f.closed:
			case <-ctx.Done():
				t.Fatal("the host kept the broken connection open")
			}
			if r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "u"}}); err != nil || r.Outcome != sdk.Allow {
				t.Fatalf("next call: %+v, %v", r, err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.accepted != 2 {
				t.Errorf("%d connections, want 2: the broken one must not be reused", f.accepted)
			}
		})
	}
}

// TestFastPathCancel: a call whose context is cancelled (not timed out)
// ends at once with the gRPC path's error, and its connection is not
// reused.
func TestFastPathCancel(t *testing.T) {
	got := make(chan struct{})
	p, pool := connectFast(t, signalsThenBlocks{got: got})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Verify(ctx, sdk.VerifyRequest{})
		errc <- err
	}()
	var err error
	select {
	case <-got: // the request is in the plugin: the host waits for its answer
		cancel()
		err = <-errc
	case err = <-errc:
		t.Fatalf("Verify returned before the plugin had the request: %v", err)
	}
	if !errors.Is(err, context.Canceled) || err.Error() != "provider call: context canceled" {
		t.Fatalf("err = %v, want the gRPC path's cancellation", err)
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.idle) != 0 {
		t.Errorf("%d idle connections after a cancelled call, want 0", len(pool.idle))
	}
}

// signalsThenBlocks tells the test it has the request, then answers only
// when its context ends.
type signalsThenBlocks struct {
	sdk.Provider
	got chan struct{}
}

func (s signalsThenBlocks) Verify(ctx context.Context, _ sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	close(s.got)
	<-ctx.Done()
	return sdk.VerifyResponse{}, ctx.Err()
}

// TestFastPathRefusesAnotherProcess: a socket whose listener is not the
// plugin process (here: this test process, expecting pid 1) is refused,
// logged once, and Verify goes over gRPC.
func TestFastPathRefusesAnotherProcess(t *testing.T) {
	path, ln := listen(t)
	go fastpath.Serve(ln, os.Getpid(), wire.NewServer(idProvider{}, sdk.ProtocolVersion).Verify, hclog.NewNullLogger())
	var logs syncBuffer
	pool := newFastPool(path, 1, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	err := pool.probe()
	var r *refusal
	if !errors.As(err, &r) || !errors.Is(err, errPeer) {
		t.Fatalf("probe = %v, want a refusal naming the peer", err)
	}
	pool.refuse(err)
	pool.refuse(err)
	if !pool.refused.Load() {
		t.Fatal("fast path not turned off")
	}
	viaGRPC := connect(t, idProvider{}).(*client)
	viaGRPC.fast = pool
	if FastPath(viaGRPC) {
		t.Error("FastPath reports a refused side channel")
	}
	if r, err := viaGRPC.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: "u"}}); err != nil || string(r.State) != "u" {
		t.Fatalf("Verify over gRPC = %+v, %v", r, err)
	}
	if n := logs.count("fast path refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestFastPathPluginRefusesAnotherProcess: the plugin's end serves only
// its parent: a connection from any other process is closed before a
// hello. Refusals are logged at the 1st, 2nd, 4th...: anyone can connect
// to an abstract socket, and must not flood the log. (A real second
// process: TestLaunchRefusesIntruder.)
func TestFastPathPluginRefusesAnotherProcess(t *testing.T) {
	path, ln := listen(t)
	var logs syncBuffer
	go fastpath.Serve(ln, 1, wire.NewServer(idProvider{}, sdk.ProtocolVersion).Verify, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	pool := newFastPool(path, os.Getpid(), hclog.NewNullLogger())
	for range 7 {
		err := pool.probe()
		var nd *errNotDialled
		if !errors.As(err, &nd) {
			t.Fatalf("probe = %v, want the connection closed before the hellos", err)
		}
	}
	// Serve logs before it closes: each probe's end follows its line.
	if n := logs.count("refused a connection"); n != 3 || logs.count("refused=4") != 1 {
		t.Errorf("7 refusals logged %d times, want 3 (1st, 2nd, 4th):\n%s", n, logs.String())
	}
}

// TestFastPathHelloVersion: a plugin whose hello names another version
// of the side channel is refused; gRPC stays.
func TestFastPathHelloVersion(t *testing.T) {
	path, ln := listen(t)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		c := fastpath.NewConn(nc)
		c.ReadHello()
		c.WriteFrame(fastpath.KindHello, []byte{'T', 'F', 'V', 'P', fastpath.Version + 1}, nil)
		c.ReadFrame()
	}()
	pool := newFastPool(path, os.Getpid(), hclog.NewNullLogger())
	var r *refusal
	if err := pool.probe(); !errors.As(err, &r) {
		t.Fatalf("probe = %v, want a refusal", err)
	}
}

// syncBuffer is a log destination safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }
