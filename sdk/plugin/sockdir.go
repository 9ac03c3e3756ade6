package plugin

import (
	"fmt"
	"os"
	"sync"
)

// envPluginSocketDir is where go-plugin's server (the plugin) creates its
// gRPC socket (go-plugin's EnvUnixSocketDir); unset, it is TMPDIR itself.
const envPluginSocketDir = "PLUGIN_UNIX_SOCKET_DIR"

// socketDirPrefix names a host's private directory for one plugin
// process's sockets: twofactor-plugin-<host pid>-<random>. The pid is what lets a
// later host tell a directory whose host is gone (sweepStale).
const socketDirPrefix = "twofactor-plugin-"

var sweepOnce sync.Once

// privateDir makes the private directory (0700) of a plugin process's
// sockets: go-plugin's, and the side channel's where it has no abstract
// name. go-plugin's plugin side removes its socket when it
// exits cleanly, but a SIGKILL (of the host, whose plugins then die by
// their parent-death signal, or of the plugin) left a plugin* socket file
// in TMPDIR for good, one per crash. In a directory of the host's own,
// Launch.Close removes it with whatever is in it, and the first Launch of
// a later host removes the directories of hosts that are gone.
func privateDir() (string, error) {
	sweepOnce.Do(func() { sweepStale(os.TempDir()) })
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", socketDirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("a private directory for the plugin's sockets: %w", err)
	}
	return dir, nil
}
