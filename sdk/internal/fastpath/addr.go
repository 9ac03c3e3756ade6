package fastpath

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// NamePrefix begins every side-channel socket's abstract name. (Where
// abstract names do not work, the socket is verify.sock in the host's
// private directory of the plugin process, sdk/plugin's privateDir.)
const NamePrefix = "twofactor-verify-"

// AbstractName returns a fresh abstract unix socket address in the net
// package's syntax ("@" for the leading NUL byte): NamePrefix and 128
// random bits from crypto/rand. An abstract socket has no file: the kernel
// frees its name when the last process holding it dies, so a host or
// plugin that crashes leaves nothing behind. It has no permissions
// either: anyone in the network namespace can connect to it or bind it
// first. SO_PEERCRED at both ends answers the first (Serve, the host's
// dial); the second needs the name, which is unguessable and, until the
// plugin has bound it, is only in the plugin's environment (readable by
// its user alone); a squatter that binds it anyway makes the plugin's
// listen fail and is refused by the host's check of the listener's pid.
func AbstractName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("fast path: a random socket name: %w", err)
	}
	return "@" + NamePrefix + hex.EncodeToString(b[:]), nil
}

// Abstract reports whether abstract unix sockets work here: Linux has
// them, but a sandbox emulating its system calls may not. Tried once per
// process by listening on a fresh name and closing it.
var Abstract = sync.OnceValue(abstractWorks)
