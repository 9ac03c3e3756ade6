//go:build !linux

package fastpath

import (
	"errors"
	"net"
)

// Supported: without SO_PEERCRED the side channel cannot check who is at
// the other end, so it is not offered; Verify stays on gRPC with mTLS.
const Supported = false

// PeerPID is not available here.
func PeerPID(net.Conn) (pid, uid int, err error) {
	return 0, 0, errors.New("fast path: peer credentials need Linux")
}
