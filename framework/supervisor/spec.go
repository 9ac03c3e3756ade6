package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// Exposed, when set, names the settings others on the machine can
	// read where they are written (a config file readable by its group or
	// others). Which settings are secret only the provider's schema says,
	// so the check is made once the provider has told its Info: a Secret
	// one among them keeps the provider from starting (ErrExposedSecret).
	Exposed *Exposure
}

// Exposure is where a provider's settings are readable by others, and the
// way out.
type Exposure struct {
	// Settings names the settings written there (providers.NAME.settings).
	Settings []string
	// Where is the file and its mode, e.g. "/etc/twofactor.yaml (mode 0644)".
	Where string
	// Fix makes the file private, e.g. "chmod 600 /etc/twofactor.yaml".
	Fix string
	// Env names, per setting, the environment variable that can hold it
	// instead.
	Env map[string]string
	// File, when set, is the file Where names: each start looks at its
	// mode again, so a provider refused for it starts at its next restart
	// attempt once the file is made private, without a reload.
	File string
}

// Equal says whether e and o expose the same settings the same way (a
// provider started with one and reloaded with the other is restarted).
func (e *Exposure) Equal(o *Exposure) bool {
	if e == nil || o == nil {
		return e == o
	}
	return slices.Equal(e.Settings, o.Settings) && e.Where == o.Where && e.Fix == o.Fix && e.File == o.File && maps.Equal(e.Env, o.Env)
}

// ErrExposedSecret marks a provider refused because a secret setting of
// it is written where others can read it (an *ExposedError).
var ErrExposedSecret = errors.New("a secret setting is readable by others")

// ExposedError is a provider refused for its secret settings written
// where others can read them. It names the settings, never their values.
type ExposedError struct {
	Provider string
	Settings []string // the secret ones
	Where    string
	Fix      string // the whole fix, with the environment variables
}

func (e *ExposedError) Error() string {
	return fmt.Sprintf("provider %q: %v: %s (secret, as its schema says) written in %s, which its group or others can read: fix: %s",
		e.Provider, ErrExposedSecret, strings.Join(e.Settings, ", "), e.Where, e.Fix)
}

func (e *ExposedError) Is(target error) bool { return target == ErrExposedSecret }

// Diagnostic is how an admin sees it (status, twofactor doctor).
func (e *ExposedError) Diagnostic() sdk.Diagnostic {
	return sdk.Diagnostic{Code: "secret_readable", Severity: sdk.SeverityError,
		Message: fmt.Sprintf("the secret setting %s is written in %s, which its group or others can read: the provider is not started",
			strings.Join(e.Settings, ", "), e.Where),
		Fix: e.Fix}
}

// check refuses the secret settings of schema among e's.
func (e *Exposure) check(provider string, schema sdk.Schema) error {
	if e == nil {
		return nil
	}
	var secret, env []string
	for _, name := range e.Settings {
		if f, ok := schema.Field(name); ok && f.Secret {
			secret = append(secret, name)
			if v := e.Env[name]; v != "" {
				env = append(env, v)
			}
		}
	}
	if len(secret) == 0 || (e.File != "" && private(e.File)) {
		return nil
	}
	slices.Sort(secret)
	slices.Sort(env)
	fix := e.Fix
	if len(env) > 0 {
		fix += ", or move " + strings.Join(secret, ", ") + " to the environment (" + strings.Join(env, ", ") + ") and out of the file"
	}
	return &ExposedError{Provider: provider, Settings: secret, Where: e.Where,
		Fix: fix + fmt.Sprintf("; the provider starts at its next restart attempt (within %s), or at once on a reload (SIGHUP)", backoffMax)}
}

// private says whether neither group nor others may read file now. A file
// that cannot be looked at is not known to be private.
func private(file string) bool {
	fi, err := os.Stat(file)
	return err == nil && fi.Mode().Perm()&0o044 == 0
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
