// Package fastpath is the plugin wire's side channel for Verify, the one
// call on the login path: length-prefixed protobuf frames on a unix
// socket, with the peer's identity checked by the kernel (SO_PEERCRED) at
// both ends. On Linux the socket has an abstract name (AbstractName), which
// nothing outlives; the peer checks are then all that keeps other
// processes out. Where abstract names do not work, it is a path in a
// directory only the host's user can enter. Everything else, and
// Verify whenever the side channel is missing or refused, stays on
// go-plugin's gRPC. Both ends (package sdk, the plugin; package
// sdk/plugin, the host) import it.
//
// A connection carries one request at a time: the host writes a Verify
// frame, the plugin answers with an OK or an error frame. It opens with a
// hello each way naming the side channel's version. Any frame that breaks
// these rules ends the connection; it is never reused.
//
// Unlike gRPC, a host that stops waiting before the deadline (its caller
// left) does not reach into the plugin: the host closes the connection
// and the plugin's Verify runs on until it returns or the deadline it was
// sent ends (the same deadline the call had), then finds the connection
// closed. Verify is short and bounded by that deadline, so this costs
// little; the host never waits for it.
package fastpath

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/protobuf/proto"
)

// EnvSocket names, in a plugin's environment, the socket address the host
// wants the plugin to listen on, in the net package's syntax for "unix": a
// path, or "@" and an abstract name. The host sets it; an SDK without the side
// channel ignores it, and the host then finds no socket and stays on gRPC.
const EnvSocket = "TWOFACTOR_VERIFY_SOCKET"

// Version is the side channel's protocol version, sent in each hello.
const Version = 1

// MaxFrame bounds a frame's length, as gRPC's default bounds a message
// (4 MiB): a larger length is garbage, not something to allocate.
const MaxFrame = 4 << 20

// Frame kinds.
const (
	KindHello  byte = 1 // magic + version, each way, once per connection
	KindVerify byte = 2 // host → plugin: remaining deadline + pb.VerifyRequest
	KindOK     byte = 3 // plugin → host: pb.VerifyResponse
	KindError  byte = 4 // plugin → host: google.rpc.Status, as gRPC carries it
)

// magic opens a hello, so a peer speaking something else is told apart
// from one speaking another version.
var magic = [4]byte{'T', 'F', 'V', 'P'}

// header is a frame's length (of kind and body) and kind.
const header = 5

// ErrFrame marks a frame that breaks the framing rules: a length of zero
// or above MaxFrame, an unknown kind, a hello that is not one.
var ErrFrame = errors.New("fast path: malformed frame")

// Conn is one side-channel connection with its buffers. It is not safe
// for concurrent use: one request at a time is the protocol.
type Conn struct {
	net.Conn
	r   *bufio.Reader
	out []byte // reused for each frame written
	in  []byte // reused for each frame body read
	// hdr is ReadFrame's header buffer. Here, not on ReadFrame's stack:
	// passed to io.ReadFull (an io.Reader) a local array escapes, one
	// heap allocation per frame at each end.
	hdr [header]byte
}

// NewConn wraps c.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, r: bufio.NewReaderSize(c, 4096)}
}

// WriteFrame writes one frame: kind, then prefix, then msg marshalled
// (msg may be nil), in a single write.
func (c *Conn) WriteFrame(kind byte, prefix []byte, msg proto.Message) error {
	b := append(c.out[:0], 0, 0, 0, 0, kind)
	b = append(b, prefix...)
	if msg != nil {
		var err error
		if b, err = (proto.MarshalOptions{}).MarshalAppend(b, msg); err != nil {
			return fmt.Errorf("fast path: marshal %T: %w", msg, err)
		}
	}
	if len(b)-4 > MaxFrame {
		return fmt.Errorf("%w: %d bytes to send, the limit is %d", ErrFrame, len(b)-4, MaxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.out = b
	_, err := c.Write(b)
	return err
}

// ReadFrame reads one frame. The body is valid until the next ReadFrame.
// A connection closed before a frame's first byte reads io.EOF; closed
// inside one, io.ErrUnexpectedEOF.
func (c *Conn) ReadFrame() (kind byte, body []byte, err error) {
	h := c.hdr[:]
	if _, err := io.ReadFull(c.r, h); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 || n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: length %d (the limit is %d)", ErrFrame, n, MaxFrame)
	}
	kind = h[4]
	if kind < KindHello || kind > KindError {
		return 0, nil, fmt.Errorf("%w: kind %d", ErrFrame, kind)
	}
	if cap(c.in) < int(n-1) {
		c.in = make([]byte, n-1)
	}
	body = c.in[:n-1]
	if _, err := io.ReadFull(c.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return kind, body, nil
}

// WriteHello sends this end's hello.
func (c *Conn) WriteHello() error {
	return c.WriteFrame(KindHello, append(magic[:], Version), nil)
}

// ReadHello reads the peer's hello and returns the version it speaks.
func (c *Conn) ReadHello() (int, error) {
	kind, body, err := c.ReadFrame()
	if err != nil {
		return 0, err
	}
	if kind != KindHello || len(body) != len(magic)+1 || [4]byte(body[:4]) != magic {
		return 0, fmt.Errorf("%w: expected a hello", ErrFrame)
	}
	return int(body[4]), nil
}
