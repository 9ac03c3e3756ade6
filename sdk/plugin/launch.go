package plugin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/fastpath"
)

// EnvFastPath is the host's switch for the Verify side channel
// (package sdk/internal/fastpath): "off" keeps every call on gRPC, for A/B
// runs and emergencies. It is read when a plugin process is prepared, so
// it takes effect at each plugin's next start. TF_, like TF_TIMERSLACK,
// not TWOFACTOR_: the host reads every TWOFACTOR_ variable as a config key
// and refuses unknown ones.
const EnvFastPath = "TF_PLUGIN_FASTPATH"

// maxSocketPath is what fits in a unix socket address (sun_path, 108
// bytes with its terminating NUL); a longer TMPDIR means no side channel.
const maxSocketPath = 107

// abstractSockets says whether the side channel's socket gets an abstract
// name (fastpath.Abstract); a variable so tests can take the directory
// path on Linux too.
var abstractSockets = fastpath.Abstract

// Launch is one plugin process as the host prepares, starts and ends it:
// the go-plugin configuration and, on Linux, the Verify side channel's
// socket address. Use it instead of ClientConfig and Dispense:
//
//	l := plugin.Prepare(cmd, log)
//	client := goplugin.NewClient(l.Config) // after adding a SecureConfig, if any
//	prov, err := l.Dispense(client)
//	...
//	client.Kill(); l.Close()
//
// One Launch serves one process: a restart prepares a new one.
type Launch struct {
	// Config is ClientConfig(cmd, logger).
	Config *goplugin.ClientConfig
	cmd    *exec.Cmd
	log    hclog.Logger
	// dir is the process's private directory (0700): go-plugin's gRPC
	// socket, and the side channel's where it has no abstract name; ""
	// where there is none.
	dir  string
	sock string // the side channel's address, "" without one
	pool *fastPool
}

// Prepare makes the Launch of cmd. Unless the side channel is switched
// off (EnvFastPath) or unsupported here, it names a socket address in
// cmd's environment (socketAddress); the plugin's SDK listens there before
// its handshake if it can. Nothing here can stop the plugin from
// starting: on any problem Verify stays on gRPC.
func Prepare(cmd *exec.Cmd, logger hclog.Logger) *Launch {
	l := &Launch{Config: ClientConfig(cmd, logger), cmd: cmd, log: logger}
	if fastpath.Supported {
		// go-plugin appends the host's environment after cmd's: a
		// PLUGIN_UNIX_SOCKET_DIR the host was given wins, as it should.
		if dir, err := privateDir(); err != nil {
			logger.Warn("the plugin's gRPC socket goes to TMPDIR, where a crash leaves it", "error", err)
		} else {
			l.dir = dir
			cmd.Env = append(cmd.Env, envPluginSocketDir+"="+dir)
		}
	}
	if !fastpath.Supported || strings.EqualFold(os.Getenv(EnvFastPath), "off") {
		return l
	}
	if os.Getenv(fastpath.EnvSocket) != "" {
		// go-plugin appends the host's own environment after cmd's, so
		// the host's value would win: this host is itself being given a
		// socket, which is not a setup the side channel is meant for.
		return l
	}
	sock, err := socketAddress(l.dir)
	if err != nil {
		logger.Warn("fast path: no socket for the Verify side channel; Verify goes over gRPC", "error", err)
		return l
	}
	l.sock = sock
	cmd.Env = append(cmd.Env, fastpath.EnvSocket+"="+sock)
	return l
}

// socketAddress names a plugin's side-channel socket: a fresh abstract
// name where those work, so that nothing is left on disk whoever dies
// (the host's SIGKILL included); otherwise a path in the process's
// private directory dir, which Close removes (and a later host, after a
// crash: privateDir).
func socketAddress(dir string) (string, error) {
	if abstractSockets() {
		return fastpath.AbstractName()
	}
	if dir == "" {
		return "", errors.New("fast path: no private directory for the socket")
	}
	sock := filepath.Join(dir, "verify.sock")
	if len(sock) > maxSocketPath {
		return "", fmt.Errorf("fast path: the temporary directory's path is too long for a unix socket: %s", sock)
	}
	return sock, nil
}

// Dispense is the package's Dispense plus the side channel: if the
// plugin listens on its socket, Verify goes there (each connection checked
// to lead to this very process); if not (an SDK built before it, another
// OS, a name someone else bound first), over gRPC.
func (l *Launch) Dispense(c *goplugin.Client) (sdk.Provider, error) {
	p, err := Dispense(c)
	if err != nil || l.sock == "" || l.cmd.Process == nil {
		return p, err
	}
	pool := newFastPool(l.sock, l.cmd.Process.Pid, l.log)
	if err := pool.probe(); err != nil {
		// A refusal (not the plugin's socket) is logged as an error once;
		// nothing listening is an older SDK, not an alarm.
		var nd *errNotDialled
		if errors.As(err, &nd) {
			l.log.Debug("fast path: the plugin offers no Verify side channel; Verify goes over gRPC", "error", err)
		}
		pool.refuse(err)
		pool.close()
		return p, nil
	}
	// The side channel is attached to this package's gRPC client. A
	// caller that replaced Config's VersionedPlugins (or passed a Client
	// built from another configuration) gets its own Provider type back,
	// which has nowhere to take it: refuse the launch, rather than panic
	// or serve a plugin whose transport is not the one this Launch set up.
	cl, ok := p.(*client)
	if !ok {
		pool.close()
		return nil, fmt.Errorf("fast path: the plugin's Provider is a %T, not this package's client: "+
			"Launch.Dispense needs a Client made from Launch.Config with its VersionedPlugins unchanged", p)
	}
	l.pool = pool
	cl.fast = pool
	return cl, nil
}

// Close ends the side channel: it closes its connections and, for a
// socket path, removes its directory (and the socket, if the plugin left
// it); an abstract name is freed by the kernel when the plugin exits. Call
// it once the process has stopped.
func (l *Launch) Close() {
	if l == nil {
		return
	}
	if l.pool != nil {
		l.pool.close()
	}
	if l.dir != "" {
		if err := os.RemoveAll(l.dir); err != nil {
			l.log.Warn("could not remove the plugin's socket directory", "dir", l.dir, "error", err)
		}
	}
}

// FastPath reports whether a Provider from Launch.Dispense sends Verify
// over the side channel (for status and tests).
func FastPath(p sdk.Provider) bool {
	c, ok := p.(*client)
	return ok && c.fast != nil && !c.fast.refused.Load()
}

// errPeer is a side-channel socket whose listener is not the plugin
// process the host started.
var errPeer = errors.New("fast path: the socket is not served by the plugin process")
