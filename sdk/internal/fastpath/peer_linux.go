package fastpath

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Supported: the side channel needs SO_PEERCRED, which is Linux's.
const Supported = true

// PeerPID returns the pid and uid of the process at the other end of c,
// as the kernel recorded them: for the dialling end, the process that
// called listen; for the accepting end, the one that called connect.
func PeerPID(c net.Conn) (pid, uid int, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, fmt.Errorf("fast path: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("fast path: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, fmt.Errorf("fast path: peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, 0, fmt.Errorf("fast path: peer credentials: %w", credErr)
	}
	return int(cred.Pid), int(cred.Uid), nil
}
