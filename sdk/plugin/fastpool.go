package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// maxIdle caps the idle side-channel connections kept per plugin. Each is
// a goroutine blocked in a read in the plugin; a burst wider than this
// dials more and closes the surplus when it ends.
const maxIdle = 32

// dialTimeout bounds connecting to the plugin's socket and the hellos,
// when the call's own deadline is later (a local socket answers in
// microseconds or not at all).
const dialTimeout = time.Second

// fastPool is the host's end of one plugin's Verify side channel: idle
// connections, each checked at dial to lead to the plugin process.
type fastPool struct {
	addr string // the socket: a path, or "@" and an abstract name
	pid  int    // the plugin process the socket must belong to
	log  hclog.Logger

	mu     sync.Mutex
	idle   []*fastpath.Conn
	closed bool

	// refused is set when the side channel turned out not to be the
	// plugin's (another process at the socket, a hello in another
	// version): Verify goes over gRPC from then on.
	refused atomic.Bool
	once    sync.Once
}

func newFastPool(addr string, pid int, log hclog.Logger) *fastPool {
	return &fastPool{addr: addr, pid: pid, log: log}
}

// errNotDialled is a dial that failed before anything was sent: the call
// may go over gRPC instead, which will tell a dead plugin from a live one.
type errNotDialled struct{ err error }

func (e *errNotDialled) Error() string { return e.err.Error() }
func (e *errNotDialled) Unwrap() error { return e.err }

// refusal is a side channel that is not the plugin's; it turns the fast
// path off for this process.
type refusal struct{ err error }

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// probe dials one connection at Dispense, so a refused side channel is
// known (and logged) at start rather than at the first login.
func (p *fastPool) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c, err := p.dial(ctx)
	if err != nil {
		return err
	}
	p.put(c)
	return nil
}

// refuse turns the side channel off for good if err says it is not the
// plugin's, logging that once (no secret is in err: it names pids and
// versions).
func (p *fastPool) refuse(err error) {
	var r *refusal
	if !errors.As(err, &r) {
		return
	}
	p.refused.Store(true)
	p.once.Do(func() {
		p.log.Error("fast path refused; Verify goes over gRPC (with mutual TLS) for this plugin process", "error", err)
	})
}

// dial connects, checks the listener's process and exchanges hellos.
func (p *fastPool) dial(ctx context.Context) (*fastpath.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "unix", p.addr)
	if err != nil {
		return nil, &errNotDialled{err}
	}
	pid, uid, err := fastpath.PeerPID(nc)
	if err == nil && (pid != p.pid || uid != os.Getuid()) {
		err = fmt.Errorf("%w: it belongs to pid %d uid %d, the plugin is pid %d uid %d", errPeer, pid, uid, p.pid, os.Getuid())
	}
	if err != nil {
		nc.Close()
		return nil, &refusal{err}
	}
	c := fastpath.NewConn(nc)
	dl := time.Now().Add(dialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.SetDeadline(dl)
	if err := c.WriteHello(); err != nil {
		c.Close()
		return nil, &errNotDialled{err}
	}
	v, err := c.ReadHello()
	if err == nil && v != fastpath.Version {
		err = fmt.Errorf("fast path: the plugin speaks side-channel version %d, this host %d", v, fastpath.Version)
	}
	if err != nil {
		c.Close()
		if errors.Is(err, fastpath.ErrFrame) || v != 0 {
			return nil, &refusal{err}
		}
		return nil, &errNotDialled{err}
	}
	return c, nil
}

// get returns an idle connection or dials one.
func (p *fastPool) get(ctx context.Context) (*fastpath.Conn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return p.dial(ctx)
}

// put returns a connection that finished a call cleanly.
func (p *fastPool) put(c *fastpath.Conn) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < maxIdle {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.Close()
}

func (p *fastPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// longAgo is a deadline in the past: it ends a blocked read or write at
// once (a cancelled call).
var longAgo = time.Unix(1, 0)

// verify sends one Verify over the side channel. sent is false when
// nothing was written (no connection could be had): the caller may then
// use gRPC. Once a request was written there is no retry here: the
// answer, or the failure, is the call's, with the errors the gRPC path
// gives (fromStatus): the provider's own typed error, the context's
// deadline or cancellation, or ErrUnreachable when the connection broke,
// closed or carried garbage. A connection that did not end its call
// cleanly is closed, never reused.
func (p *fastPool) verify(ctx context.Context, req *pb.VerifyRequest) (resp *pb.VerifyResponse, sent bool, err error) {
	if p.refused.Load() {
		return nil, false, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, true, fmt.Errorf("provider call: %w", err) // as gRPC answers a call already over
	}
	c, err := p.get(ctx)
	if err != nil {
		p.refuse(err)
		return nil, false, nil
	}
	deadline, hasDeadline := ctx.Deadline()
	var remaining time.Duration
	if hasDeadline {
		if remaining = time.Until(deadline); remaining <= 0 {
			p.put(c)
			return nil, true, fmt.Errorf("provider call: %w", context.DeadlineExceeded)
		}
	}
	c.SetDeadline(deadline) // zero: none
	// The conn's deadline covers the context's deadline; a cancellation
	// before it ends the wait through a deadline in the past.
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.SetDeadline(longAgo) })
	}
	var pre [8]byte
	resp, err = exchange(c, fastpath.DeadlinePrefix(&pre, remaining), req)
	// A context that ended may still land its deadline on c at any
	// moment, even during a later call: such a c is not reused either.
	ended := stop != nil && !stop()
	var a *errAnswer
	if !ended && (err == nil || errors.As(err, &a) && a.sound) {
		p.put(c)
	} else {
		c.Close()
	}
	if err != nil {
		return nil, true, p.callError(ctx, err)
	}
	return resp, true, nil
}

// errAnswer is a frame that arrived whole and carried the plugin's
// answer; its error is the provider's (or an unreadable answer), not the
// transport's, and the connection is sound.
type errAnswer struct {
	err   error
	sound bool // the frame was well formed: the connection may be reused
}

func (e *errAnswer) Error() string { return e.err.Error() }
func (e *errAnswer) Unwrap() error { return e.err }

// exchange writes the request and reads its answer.
func exchange(c *fastpath.Conn, prefix []byte, req *pb.VerifyRequest) (*pb.VerifyResponse, error) {
	if err := c.WriteFrame(fastpath.KindVerify, prefix, req); err != nil {
		return nil, err
	}
	kind, body, err := c.ReadFrame()
	if err != nil {
		return nil, err
	}
	switch kind {
	case fastpath.KindOK:
		resp := new(pb.VerifyResponse)
		if err := proto.Unmarshal(body, resp); err != nil {
			return nil, &errAnswer{err: &sdk.Error{Kind: sdk.KindInternal, Message: "provider returned an unreadable answer"}}
		}
		return resp, nil
	case fastpath.KindError:
		st := new(spb.Status)
		if err := proto.Unmarshal(body, st); err != nil {
			return nil, &errAnswer{err: &sdk.Error{Kind: sdk.KindInternal, Message: "provider returned an unreadable error"}}
		}
		return nil, &errAnswer{err: fromStatus(status.ErrorProto(st)), sound: true}
	}
	return nil, fmt.Errorf("%w: a %d frame where an answer belongs", fastpath.ErrFrame, kind)
}

// callError maps a failed exchange to the gRPC path's errors.
func (p *fastPool) callError(ctx context.Context, err error) error {
	var a *errAnswer
	if errors.As(err, &a) {
		return a.err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("provider call: %w", cerr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The conn's deadline is the context's, and the poller's timer
		// can fire a moment before the context's own: the call's
		// deadline passed all the same. A caller that accounts for
		// missed deadlines by its context (the supervisor's within)
		// waits out that moment itself, for either transport.
		return fmt.Errorf("provider call: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, &sdk.Error{Kind: sdk.KindUnavailable, Message: "fast path: " + err.Error()})
}
