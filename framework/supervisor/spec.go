package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// BinaryPrefix is the file name prefix of provider plugins in the plugin
// folder: twofactor-provider-NAME.
const BinaryPrefix = "twofactor-provider-"

// Call deadlines. DefaultTimeout bounds Enroll and Verify; control calls
// (Info, Configure, Activate) and health pings get ControlTimeout, or the
// provider's Timeout when that is shorter: they touch no user and should
// answer at once.
const (
	DefaultTimeout = 5 * time.Second
	ControlTimeout = 2 * time.Second
	// BackendTimeoutSetting is the generic way for a provider to say that
	// its backend has its own deadline: a TypeDuration field of this name
	// in its Schema. Enroll and Verify then get that deadline plus
	// BackendMargin when it is longer than Timeout, so the host never cuts
	// off an answer the provider was still allowed to wait for (a Duo push
	// long-polls up to its timeout), and names no provider to do it.
	BackendTimeoutSetting = "timeout"
	BackendMargin         = 2 * time.Second
)

// ProviderSpec says where a provider comes from and who may use it.
type ProviderSpec struct {
	Name string
	// Staff and Clients enable the provider for each audience (applied by
	// the framework, not here).
	Staff, Clients bool
	// Settings are passed to the provider's Configure.
	Settings sdk.Settings
	// Binary is the path of the plugin executable; see FindBinary. Exactly
	// one of Binary and Impl is set.
	Binary string
	// SHA256, when set, pins the binary: a different file is refused at
	// every start. Hex-encoded.
	SHA256 string
	// Impl runs the provider in this process, for embedding, tests and
	// benchmarks. The service runs every provider out of process.
	Impl sdk.Provider
	// Timeout bounds Enroll and Verify; DefaultTimeout when zero. See
	// BackendTimeoutSetting for providers with a slower backend.
	Timeout time.Duration
}

// ProviderStatus is what an admin sees of a provider.
type ProviderStatus struct {
	Name    string
	Version string
	Staff   bool
	Clients bool
	Running bool
	// Protocol is the wire protocol version the running plugin negotiated
	// (sdk.MinProtocolVersion to sdk.ProtocolVersion), 0 for a provider in
	// this process or none running: version 1 has no challenge step.
	Protocol    int
	Health      sdk.Health
	Diagnostics []sdk.Diagnostic
	Restarts    int
	LastError   string
	// LastErr is LastError typed: an *Error whose Kind says what happened
	// (KindHung, KindTimeout, KindUnavailable...), for callers that branch.
	LastErr error
	// Hung is true from the plugin's first missed health ping until it
	// answers again, is restarted, or fails to restart (then Running is
	// false). Hangs and Timeouts count since this provider was configured.
	Hung     bool
	Hangs    int
	Timeouts int
	// FastPath is true when the running plugin's Verify goes over its
	// side channel (sdk/plugin's Launch) rather than gRPC.
	FastPath bool
}

// FindBinary returns the plugin executable for a provider in dir, or an
// error that names the path it looked for.
func FindBinary(dir, name string) (string, error) {
	path := filepath.Join(dir, BinaryPrefix+name)
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("provider %q: no plugin binary at %s (set plugins.dir, or run make build)", name, path)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("provider %q: %s is not an executable file", name, path)
	}
	return path, nil
}

// FileSHA256 returns the hex SHA-256 of a file: the digest to pin a plugin
// binary with.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// GOGC is the collector's target percentage the project's processes run
// with unless their environment sets GOGC: every plugin process (launch
// passes it) and the host service (host/cli's serve applies it). Both
// have small live heaps and allocate on every call (gRPC, TLS, protobuf,
// JSON): at Go's default of 100 the collector ran so often under load
// that the mark workers, assists and sweeping were a tenth of the host's
// CPU samples at c=32, and a good part of a plugin call's CPU (issue 16).
// 400 lets the heap reach five times the live heap between collections:
// in the login bench the host's peak RSS went from about 50 to 70 MiB.
// It lives here, the lowest package both import, so the policy is one
// number.
const GOGC = 400
