package framework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
)

// BinaryPrefix is the file name prefix of provider plugins in the plugin
// folder: twofactor-provider-NAME.
const BinaryPrefix = "twofactor-provider-"

var providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ProviderSpec says where a provider comes from and who may use it.
type ProviderSpec struct {
	Name string
	// Staff and Clients enable the provider for each audience.
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

// Restart backoff: a crashed plugin is restarted at once on the next call;
// if that start fails, later attempts wait this long, doubling, capped.
const (
	backoffMin = 200 * time.Millisecond
	backoffMax = 30 * time.Second
)

// managed is one provider and, for a plugin, the process behind it. It
// restarts a dead plugin lazily, on the call that finds it dead, guarded so
// that many concurrent callers cause one restart, not many.
type managed struct {
	spec    ProviderSpec
	log     hclog.Logger
	now     func() time.Time
	latency latencyEWMA // of answered verifies, to pad not-enrolled ones
	// users is held shared by every call; retire takes it exclusively, so
	// a replaced provider stops only after its in-flight calls are done,
	// and calls arriving later are sent to its successor.
	users sync.RWMutex

	mu          sync.Mutex
	client      *plugin.Client // nil for in-process providers
	prov        sdk.Provider   // nil while down
	info        sdk.Info
	activation  sdk.Activation
	lastErr     error
	restarts    int
	backoff     time.Duration
	nextAttempt time.Time
	closed      bool
}

func newManaged(spec ProviderSpec, log hclog.Logger, now func() time.Time) *managed {
	return &managed{spec: spec, log: log.Named(spec.Name), now: now}
}

// start launches (for a plugin) and prepares the provider: Info, Configure,
// Activate. It must be called with m.mu held.
func (m *managed) start(ctx context.Context) error {
	prov, client, err := m.launch()
	if err == nil {
		err = m.prepare(ctx, prov)
	}
	if err != nil {
		if client != nil {
			client.Kill()
		}
		m.lastErr, m.activation = err, failedActivation(err)
		m.backoff = min(max(m.backoff*2, backoffMin), backoffMax)
		m.nextAttempt = m.now().Add(m.backoff)
		return err
	}
	m.client, m.prov, m.lastErr, m.backoff = client, prov, nil, 0
	return nil
}

func (m *managed) launch() (sdk.Provider, *plugin.Client, error) {
	if m.spec.Impl != nil {
		return m.spec.Impl, nil, nil
	}
	cmd := exec.Command(m.spec.Binary)
	// Pdeathsig belongs to the thread that forks; Go keeps its threads
	// alive, so in practice it fires when the host process dies.
	setParentDeathSignal(cmd)
	cfg := sdk.ClientConfig(cmd, m.log)
	if m.spec.SHA256 != "" {
		// go-plugin checks the pin again at exec, but its error names
		// neither digest; this check tells the admin what to compare.
		actual, err := FileSHA256(m.spec.Binary)
		if err != nil {
			return nil, nil, fmt.Errorf("provider %q: %w", m.spec.Name, err)
		}
		if !strings.EqualFold(actual, m.spec.SHA256) {
			return nil, nil, fmt.Errorf("provider %q: %s does not match its pin: expected sha256 %s, actual %s (if you upgraded it on purpose, pin the new digest)",
				m.spec.Name, m.spec.Binary, strings.ToLower(m.spec.SHA256), actual)
		}
		sum, _ := hex.DecodeString(m.spec.SHA256) // checked by checkSpec
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	prov, err := sdk.Dispense(client)
	if err != nil {
		return nil, client, fmt.Errorf("provider %q: start %s: %w", m.spec.Name, m.spec.Binary, err)
	}
	return prov, client, nil
}

func (m *managed) prepare(ctx context.Context, prov sdk.Provider) error {
	info, err := prov.Info(ctx)
	if err != nil {
		return fmt.Errorf("provider %q: info: %w", m.spec.Name, err)
	}
	if info.Name != m.spec.Name {
		return fmt.Errorf("provider %q: %w: it says it is provider %q", m.spec.Name, errNotThisProvider, info.Name)
	}
	if err := prov.Configure(ctx, m.spec.Settings); err != nil {
		return fmt.Errorf("provider %q: configure: %w", m.spec.Name, err)
	}
	act, err := prov.Activate(ctx)
	if err != nil {
		return fmt.Errorf("provider %q: activate: %w", m.spec.Name, err)
	}
	m.info, m.activation = info, act
	if act.Health != sdk.Healthy {
		m.log.Warn("provider activated but not healthy", "health", act.Health)
	}
	for _, d := range act.Diagnostics {
		m.log.Info("provider diagnostic", "code", d.Code, "message", d.Message, "value", d.Value)
	}
	return nil
}

// get returns a live provider, restarting a dead plugin if its backoff
// allows.
func (m *managed) get(ctx context.Context) (sdk.Provider, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errorf(CodeProviderUnavailable, nil, "provider %q is shut down", m.spec.Name)
	}
	if m.prov != nil && (m.client == nil || !m.client.Exited()) {
		return m.prov, nil
	}
	if m.prov != nil {
		m.markDownLocked(errors.New("plugin process exited"))
	}
	if wait := m.nextAttempt.Sub(m.now()); wait > 0 {
		return nil, errorf(CodeProviderUnavailable, m.lastErr, "provider %q is down; next restart attempt in %s", m.spec.Name, wait.Round(time.Millisecond))
	}
	m.restarts++
	m.log.Warn("starting provider again", "restarts", m.restarts)
	if err := m.start(ctx); err != nil {
		m.log.Error("provider restart failed", "error", err, "retry_in", m.backoff)
		return nil, errorf(CodeProviderUnavailable, err, "provider %q is down", m.spec.Name)
	}
	return m.prov, nil
}

func (m *managed) markDownLocked(cause error) {
	m.log.Error("provider plugin is down", "error", cause)
	if m.client != nil {
		m.client.Kill()
	}
	m.client, m.prov, m.lastErr = nil, nil, cause
}

// markDown records that prov stopped answering. The identity check is the
// canary: among concurrent callers that saw the same dead plugin, only the
// first tears it down, and a plugin already restarted is left alone.
func (m *managed) markDown(prov sdk.Provider, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prov == prov && m.client != nil {
		m.markDownLocked(cause)
	}
}

// call runs fn against the provider. If the plugin turns out to be dead, it
// is restarted once and fn retried once: a provider call has no side effect
// the host keeps before it gets the answer, so the retry is safe.
func (m *managed) call(ctx context.Context, fn func(sdk.Provider) error) error {
	if !m.users.TryRLock() {
		return errRetired
	}
	defer m.users.RUnlock()
	for attempt := 0; ; attempt++ {
		prov, err := m.get(ctx)
		if err != nil {
			return err
		}
		err = fn(prov)
		if err == nil || !errors.Is(err, sdk.ErrUnreachable) || m.spec.Impl != nil {
			return err
		}
		m.markDown(prov, err)
		if attempt == 1 {
			return errorf(CodeProviderUnavailable, err, "provider %q stopped answering", m.spec.Name)
		}
	}
}

// status is a snapshot for admins.
func (m *managed) status() ProviderStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := ProviderStatus{
		Name: m.spec.Name, Version: m.info.Version, // audiences: from the registry
		Running: m.prov != nil && (m.client == nil || !m.client.Exited()), Restarts: m.restarts,
		Health: m.activation.Health, Diagnostics: m.activation.Diagnostics,
	}
	if !st.Running {
		st.Health = sdk.Unhealthy
	}
	if m.lastErr != nil {
		st.LastError = m.lastErr.Error()
	}
	return st
}

// refresh re-runs Activate, as the host does on a schedule.
func (m *managed) refresh(ctx context.Context) {
	err := m.call(ctx, func(p sdk.Provider) error {
		act, err := p.Activate(ctx)
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.activation = act
		m.mu.Unlock()
		return nil
	})
	if err != nil {
		m.mu.Lock()
		m.activation = failedActivation(err)
		m.mu.Unlock()
	}
}

// retire stops a provider a reload replaced, once its calls are done.
func (m *managed) retire() {
	m.users.Lock()
	m.stop()
}

func (m *managed) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.client != nil {
		m.client.Kill()
	}
	m.client, m.prov = nil, nil
}

// ProviderStatus is what an admin sees of a provider.
type ProviderStatus struct {
	Name        string
	Version     string
	Staff       bool
	Clients     bool
	Running     bool
	Health      sdk.Health
	Diagnostics []sdk.Diagnostic
	Restarts    int
	LastError   string
}
