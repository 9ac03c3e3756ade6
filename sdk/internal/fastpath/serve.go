package fastpath

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/twofactor/twofactor/sdk/internal/pb"
)

// Handler is the plugin's Verify: the same method the gRPC service runs
// (package sdk's server.Verify, with its panic guard, deadline watch and
// error mapping). Its error is a gRPC status, carried as such.
type Handler func(ctx context.Context, req *pb.VerifyRequest) (*pb.VerifyResponse, error)

// Serve accepts side-channel connections on ln until ln is closed. A
// connection is served only if the kernel says its peer is process peer
// (the plugin's parent, the host that started it) running as this
// process's user; any other is closed at once, before a byte is read or
// written. Refusals are logged at the 1st, 2nd, 4th, 8th... one: on an
// abstract socket any local user can connect, and must not be able to
// flood the host's log.
//
// If accepting fails (out of file descriptors, say), ln is closed: the
// host's dials are then refused at once and it uses gRPC, instead of
// connecting to a backlog no one serves and waiting for a hello.
func Serve(ln net.Listener, peer int, h Handler, log hclog.Logger) {
	defer ln.Close()
	refused := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("fast path: accept failed; Verify goes on over gRPC", "error", err)
			}
			return
		}
		pid, uid, err := PeerPID(c)
		if err != nil || pid != peer || uid != os.Getuid() {
			if refused++; refused&(refused-1) == 0 {
				log.Error("fast path: refused a connection from a process other than the host", "peer_pid", pid, "peer_uid", uid,
					"host_pid", peer, "refused", refused, "error", err)
			}
			c.Close()
			continue
		}
		go ServeConn(NewConn(c), h, log)
	}
}

// ServeConn serves one connection, one request at a time, on the calling
// goroutine: read, call h, write. It returns, closing c, when the host
// closes it or breaks the protocol.
func ServeConn(c *Conn, h Handler, log hclog.Logger) {
	defer c.Close()
	if v, err := c.ReadHello(); err != nil || v != Version {
		if !errors.Is(err, io.EOF) {
			log.Warn("fast path: the host's hello is not one this plugin speaks; closing", "version", v, "error", err)
		}
		c.WriteHello() // tells the host which version this end speaks
		return
	}
	if err := c.WriteHello(); err != nil {
		return
	}
	req := new(pb.VerifyRequest)
	for {
		kind, body, err := c.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Warn("fast path: bad frame from the host; closing the connection", "error", err)
			}
			return
		}
		if kind != KindVerify || len(body) < 8 {
			log.Warn("fast path: unexpected frame from the host; closing the connection", "kind", kind)
			return
		}
		proto.Reset(req)
		if err := proto.Unmarshal(body[8:], req); err != nil {
			// gRPC answers a request it cannot decode with an error and
			// goes on; here the stream itself is suspect.
			log.Warn("fast path: unreadable request from the host; closing the connection", "error", err)
			return
		}
		if err := answer(c, h, time.Duration(binary.BigEndian.Uint64(body[:8])), req); err != nil {
			return
		}
	}
}

// answer runs one Verify under the host's remaining deadline and writes
// its answer.
func answer(c *Conn, h Handler, remaining time.Duration, req *pb.VerifyRequest) error {
	var ctx context.Context
	var cancel context.CancelFunc
	if remaining > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), remaining)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	resp, err := h(ctx, req)
	cancel()
	if err != nil {
		return c.WriteFrame(KindError, nil, status.Convert(err).Proto())
	}
	if resp == nil {
		return c.WriteFrame(KindError, nil, status.New(codes.Internal, "provider returned no answer").Proto())
	}
	return c.WriteFrame(KindOK, nil, resp)
}

// DeadlinePrefix encodes a request's remaining deadline (0: none).
func DeadlinePrefix(b *[8]byte, remaining time.Duration) []byte {
	binary.BigEndian.PutUint64(b[:], uint64(max(remaining, 0)))
	return b[:]
}
