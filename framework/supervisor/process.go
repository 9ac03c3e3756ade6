package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/framework/binperm"
	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// startTimeout bounds one start (launch, handshake, Info, Configure,
// Activate), whoever asked for it.
const startTimeout = 15 * time.Second

// pluginProcs is the GOMAXPROCS of a plugin process, unless the host's
// environment sets one. A provider serves short calls: with a second P,
// each call's goroutine hand-offs in the plugin (the gRPC reader, the
// stream's goroutine, the writer that sends the answer) wake a second OS
// thread, which spins, finds nothing and sleeps again, each time. With one
// P the same work runs on one thread. Measured with the login bench's TOTP
// plugin at one login at a time (perf stat on the plugin, shared 2-core
// machine): 15 context switches and 29 syscalls per login with the
// default, 8.6 and 18 with one P, and about a quarter less CPU. A provider
// that needs more cores (heavy cryptography at high load on a large
// machine) runs with the GOMAXPROCS the host is started with.
const pluginProcs = "GOMAXPROCS=1"

// hostEnvPrefix starts every environment variable of the host's own
// configuration (framework/config.EnvPrefix; the supervisor does not
// import config, and a test holds the two equal).
const hostEnvPrefix = "TWOFACTOR_"

// PluginEnv is the whole environment a plugin process is started with
// (launch sets go-plugin's SkipHostEnv, so go-plugin adds only its own
// handshake variables): the defaults GOGC and pluginProcs, then the
// host's environment without its configuration. The README tells admins
// to give secrets as TWOFACTOR_ variables (the encryption key, the API
// keys, Duo's secret key); no plugin needs them, since its settings
// reach it through Configure, and a plugin's bug (a file read of
// /proc/self/environ, a crash dump, a child process) must not hand out
// the key to every user's factors. The rest is kept: a plugin may need
// PATH, a proxy (HTTPS_PROXY), CA roots (SSL_CERT_FILE), its locale or
// its own variables. exec keeps the last value of a name, so a GOGC or
// GOMAXPROCS the host was given wins over the defaults. A benchmark that
// starts a plugin by itself uses it to measure what the host runs.
func PluginEnv() []string {
	env := []string{"GOGC=" + strconv.Itoa(GOGC), pluginProcs}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, hostEnvPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

// Options tune supervision; zero fields take the defaults.
type Options struct {
	Logger hclog.Logger
	// Now is the clock of the restart backoff; time.Now when nil.
	Now func() time.Time
	// HealthInterval is how often the supervisor pings a running plugin
	// and retries a failed one: 1 s when zero.
	HealthInterval time.Duration
	// HangAfter is how many health pings in a row a plugin may miss
	// before it is declared hung: 2 when zero. One missed ping on a
	// loaded machine is not yet a hang.
	HangAfter int
	// KillGrace is how long a plugin gets to stop gracefully before its
	// process group is SIGKILLed: 2 s when zero.
	KillGrace time.Duration
	// OnStart is told the Info of every successful start.
	OnStart func(sdk.Info)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = time.Second
	}
	if o.HangAfter <= 0 {
		o.HangAfter = 2
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 2 * time.Second
	}
	return o
}

// handle is one running plugin process (client nil for in-process).
type handle struct {
	prov   sdk.Provider
	client *plugin.Client
	pid    int
	launch *sdkplugin.Launch // its Verify side channel, closed by kill
}

// Process is one provider and, for a plugin, the process behind it.
type Process struct {
	spec ProviderSpec
	opts Options
	log  hclog.Logger
	// users is held shared by every call; Retire takes it exclusively, so
	// a replaced provider stops only after its in-flight calls are done
	// (each bounded by its deadline), and later calls go to its successor.
	users sync.RWMutex

	mu         sync.Mutex
	cur        handle // zero while down
	info       sdk.Info
	activation sdk.Activation
	// schema is the settings schema of the last Info that passed its
	// checks, kept when Configure or Activate then failed: a reload that
	// fixes the settings is judged by it (Schema).
	schema      sdk.Schema
	knowsSchema bool
	timeouts    timeouts
	starting    chan struct{} // closed when the start under way ends
	started     bool          // a first start was attempted
	lastErr     error
	restarts    int
	hangs       int
	timeoutsN   int
	hung        bool
	missedPings int
	restart     restartPolicy // when a start may follow a failure
	closed      bool

	wake     chan struct{} // asks the supervising loop to check now
	done     chan struct{} // closed by Stop
	loopDone chan struct{}
	loopOnce sync.Once
}

// New returns a supervisor for spec; Start brings it up.
func New(spec ProviderSpec, opts Options) *Process {
	opts = opts.withDefaults()
	return &Process{
		spec: spec, opts: opts, log: opts.Logger.Named(spec.Name),
		timeouts: timeoutsFor(spec, sdk.Info{}),
		wake:     make(chan struct{}, 1), done: make(chan struct{}), loopDone: make(chan struct{}),
	}
}

// Start brings the provider up and starts supervising it. If the start
// fails, the error is returned and recorded, and the supervisor keeps
// retrying with backoff on its own schedule until Stop.
func (p *Process) Start(ctx context.Context) error {
	p.loopOnce.Do(func() {
		if p.spec.Impl == nil {
			go p.supervise()
		} else {
			close(p.loopDone) // nothing to ping or restart in process
		}
	})
	_, err := p.get(ctx, time.Now())
	return err
}

func (p *Process) live() bool {
	return p.cur.prov != nil && (p.cur.client == nil || !p.cur.client.Exited())
}

// get returns a live provider, restarting a dead plugin if its backoff
// allows. Many concurrent callers cause one start: the others wait for it,
// up to their call's deadline.
func (p *Process) get(ctx context.Context, started time.Time) (sdk.Provider, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, newError(p.spec.Name, KindStopped, nil, "is shut down")
		}
		if p.live() {
			prov := p.cur.prov
			p.mu.Unlock()
			return prov, nil
		}
		if p.cur.prov != nil {
			h := p.detachLocked(newError(p.spec.Name, KindUnavailable, nil, "plugin process exited"))
			p.mu.Unlock()
			p.log.Error("provider plugin is down", "error", "plugin process exited")
			go p.kill(h, p.opts.KillGrace)
			continue
		}
		if ch := p.starting; ch != nil {
			limit := p.timeouts.call
			p.mu.Unlock()
			t := time.NewTimer(time.Until(started.Add(limit)))
			select {
			case <-ch:
				t.Stop()
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, newError(p.spec.Name, KindUnavailable, ctx.Err(), "is starting")
			case <-t.C:
				return nil, newError(p.spec.Name, KindTimeout, nil, "did not start within %s", limit)
			}
		}
		if wait := p.restart.wait(p.opts.Now()); p.started && wait > 0 {
			err := newError(p.spec.Name, KindUnavailable, p.lastErr, "is down; next restart attempt in %s", wait.Round(time.Millisecond))
			p.mu.Unlock()
			return nil, err
		}
		if p.started {
			p.restarts++
			p.log.Warn("starting provider again", "restarts", p.restarts)
		}
		p.started = true
		p.starting = make(chan struct{})
		p.mu.Unlock()
		if err := p.start(); err != nil {
			return nil, err
		}
	}
}

// start brings the provider up; the caller has set p.starting. It runs on
// a context of its own: a request that gives up must not leave a
// half-started plugin behind, nor push the provider into backoff.
func (p *Process) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	h, err := p.launch()
	var info sdk.Info
	var act sdk.Activation
	tos := p.timeouts
	if err == nil {
		info, act, tos, err = p.prepare(ctx, h.prov)
	}
	if err == nil && p.opts.OnStart != nil {
		p.opts.OnStart(info)
	}
	p.mu.Lock()
	ch := p.starting
	p.starting = nil
	if err == nil && p.closed {
		err = newError(p.spec.Name, KindStopped, nil, "was shut down while starting")
	}
	if err != nil {
		// A hung process is gone by now; what remains is a provider that
		// is down (Running false), not one that hangs.
		p.lastErr, p.hung, p.missedPings = err, false, 0
		p.activation = FailedActivation(err)
		retry, again := p.restart.failed(p.opts.Now()), p.restarts > 0
		p.mu.Unlock()
		close(ch)
		if again && KindOf(err) != KindStopped {
			p.log.Error("provider start failed", "error", err, "retry_in", retry)
		}
		p.kill(h, p.opts.KillGrace)
		return err
	}
	p.cur, p.info, p.activation, p.timeouts = h, info, act, tos
	p.lastErr, p.hung, p.missedPings = nil, false, 0
	p.restart.up(p.opts.Now())
	p.mu.Unlock()
	close(ch)
	return nil
}

func (p *Process) launch() (handle, error) {
	if p.spec.Impl != nil {
		return handle{prov: p.spec.Impl}, nil
	}
	if err := binperm.Check(p.spec.Binary); err != nil { // StrictModes: a binary others could replace is not run
		return handle{}, fmt.Errorf("provider %q: %w", p.spec.Name, err)
	}
	cmd := exec.Command(p.spec.Binary)
	cmd.Env = PluginEnv() // the whole environment: cfg.SkipHostEnv below
	// Pdeathsig belongs to the thread that forks; Go keeps its threads
	// alive, so in practice it fires when the host process dies.
	setParentDeathSignal(cmd)
	launch := sdkplugin.Prepare(cmd, p.log)
	cfg := launch.Config
	cfg.SkipHostEnv = true // PluginEnv holds what the host lets through
	if p.spec.SHA256 != "" {
		// go-plugin checks the pin again at exec, but its error names
		// neither digest; this check tells the admin what to compare.
		actual, err := FileSHA256(p.spec.Binary)
		if err != nil {
			launch.Close()
			return handle{}, fmt.Errorf("provider %q: %w", p.spec.Name, err)
		}
		if !strings.EqualFold(actual, p.spec.SHA256) {
			launch.Close()
			return handle{}, fmt.Errorf("provider %q: %s does not match its pin: expected sha256 %s, actual %s (if you upgraded it on purpose, pin the new digest)",
				p.spec.Name, p.spec.Binary, strings.ToLower(p.spec.SHA256), actual)
		}
		sum, _ := hex.DecodeString(p.spec.SHA256) // checked by the framework
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	prov, err := launch.Dispense(client)
	h := handle{prov: prov, client: client, launch: launch}
	if cmd.Process != nil {
		h.pid = cmd.Process.Pid
	}
	if err != nil {
		return h, fmt.Errorf("provider %q: start %s: %w", p.spec.Name, p.spec.Binary, err)
	}
	return h, nil
}

// prepare runs Info, Configure and Activate, each on its own deadline.
func (p *Process) prepare(ctx context.Context, prov sdk.Provider) (sdk.Info, sdk.Activation, timeouts, error) {
	tos := p.timeouts
	var info sdk.Info
	err := bounded(ctx, tos.control, func(ctx context.Context) (err error) { info, err = prov.Info(ctx); return err })
	if err != nil {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: info: %w", p.spec.Name, err)
	}
	if info.Name != p.spec.Name {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: %w: it says it is provider %q", p.spec.Name, ErrNotThisProvider, info.Name)
	}
	// A sign-in code no field can be drawn for (sdk.CodeInput.Validate) is
	// a broken plugin: refused now, not met by every user at sign-in.
	if err := info.CodeInput.Validate(); err != nil {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: info: sign-in code outside the SDK's rule: %w", p.spec.Name, err)
	}
	// Likewise a schema the host cannot read, or whose Loosens marks do
	// not fit their fields (the reload's check would misjudge them).
	if err := info.Schema.Validate(); err != nil {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: info: settings schema outside the SDK's rule: %w", p.spec.Name, err)
	}
	p.mu.Lock()
	p.schema, p.knowsSchema = info.Schema, true
	p.mu.Unlock()
	// Texts the pages could not show as is (sdk.Texts.Validate), likewise.
	if err := info.Texts.Validate(); err != nil {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: info: texts outside the SDK's rule: %w", p.spec.Name, err)
	}
	tos = timeoutsFor(p.spec, info)
	// Before Configure: a secret others can read is not handed on.
	if err := p.spec.Exposed.check(p.spec.Name, info.Schema); err != nil {
		return info, sdk.Activation{}, tos, err
	}
	if err := bounded(ctx, tos.control, func(ctx context.Context) error { return prov.Configure(ctx, p.spec.Settings) }); err != nil {
		return info, sdk.Activation{}, tos, fmt.Errorf("provider %q: configure: %w", p.spec.Name, err)
	}
	var act sdk.Activation
	err = bounded(ctx, tos.activate, func(ctx context.Context) (err error) { act, err = prov.Activate(ctx); return err })
	if err != nil {
		return info, act, tos, fmt.Errorf("provider %q: activate: %w", p.spec.Name, err)
	}
	if act.Health != sdk.Healthy {
		p.log.Warn("provider activated but not healthy", "health", act.Health)
	}
	for _, d := range act.Diagnostics {
		p.log.Info("provider diagnostic", "code", d.Code, "message", d.Message, "value", d.Value)
	}
	return info, act, tos, nil
}

// detachLocked takes the running process out of service, recording cause,
// and returns it for the caller to kill outside p.mu: killing can take up
// to twice the grace period, and nothing else may wait for it.
func (p *Process) detachLocked(cause error) handle {
	h := p.cur
	p.cur = handle{}
	if cause != nil {
		p.lastErr = cause
		p.crashedLocked()
	}
	return h
}

// crashedLocked counts a crash (or hang) of the current process by the
// restart policy, which sets the next restart's wait.
func (p *Process) crashedLocked() {
	if wait := p.restart.crashed(p.opts.Now()); wait > 0 {
		p.log.Error("provider plugin is crash-looping: restarts back off", "failures", p.restart.failures, "retry_in", wait)
	}
}

// markDown records that prov stopped answering. The identity check is the
// canary: among concurrent callers that saw the same dead plugin, only the
// first tears it down, and a plugin already restarted is left alone.
func (p *Process) markDown(prov sdk.Provider, cause error) {
	p.mu.Lock()
	if p.cur.prov != prov || p.cur.client == nil {
		p.mu.Unlock()
		return
	}
	h := p.detachLocked(cause)
	p.mu.Unlock()
	p.log.Error("provider plugin is down", "error", cause)
	go p.kill(h, p.opts.KillGrace)
}

// Call runs fn against the provider, under the provider's deadlines (see
// ProviderSpec.Timeout): fn gets a provider whose every method carries
// them, whatever context fn passes. A call past its deadline answers an
// *Error of KindTimeout and makes the supervisor ping the plugin at once.
// If the plugin turns out to be dead, it is restarted once and fn retried
// once within the same deadline: a provider call has no side effect the
// host keeps before it gets the answer, so the retry is safe.
func (p *Process) Call(ctx context.Context, fn func(sdk.Provider) error) error {
	if !p.users.TryRLock() {
		return ErrRetired
	}
	defer p.users.RUnlock()
	started := time.Now()
	for attempt := 0; ; attempt++ {
		prov, err := p.get(ctx, started)
		if err != nil {
			switch KindOf(err) {
			case KindTimeout:
				p.noteTimeout()
			case 0: // the restart this call made failed
				err = newError(p.spec.Name, KindUnavailable, err, "is down")
			}
			return err
		}
		p.mu.Lock()
		d := &deadlined{inner: prov, started: started, tos: p.timeouts}
		p.mu.Unlock()
		err = fn(d)
		if d.missed > 0 {
			p.noteTimeout()
			return newError(p.spec.Name, KindTimeout, err, "did not answer within %s", d.missed)
		}
		if err == nil || !errors.Is(err, sdkplugin.ErrUnreachable) || p.spec.Impl != nil {
			return err
		}
		p.markDown(prov, newError(p.spec.Name, KindUnavailable, err, "stopped answering"))
		if attempt == 1 {
			return newError(p.spec.Name, KindUnavailable, err, "stopped answering")
		}
	}
}

// noteTimeout counts a missed deadline and asks for a health ping now:
// a slow backend behind a plugin that still answers its pings is not a
// hang, a plugin that answers neither is.
func (p *Process) noteTimeout() {
	p.mu.Lock()
	p.timeoutsN++
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Status is a snapshot for admins.
func (p *Process) Status() ProviderStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProviderStatus{
		Name: p.spec.Name, Version: p.info.Version,
		Running: p.live(), Restarts: p.restarts, Protocol: sdkplugin.Negotiated(p.cur.prov),
		Health: p.activation.Health, Diagnostics: p.activation.Diagnostics,
		Hung: p.hung || p.missedPings > 0, Hangs: p.hangs, Timeouts: p.timeoutsN,
		LastErr: p.lastErr, FastPath: sdkplugin.FastPath(p.cur.prov),
	}
	if !st.Running || st.Hung {
		st.Health = sdk.Unhealthy
	}
	if p.lastErr != nil {
		st.LastError = p.lastErr.Error()
	}
	return st
}

// Info is what the provider said of itself at its last start.
func (p *Process) Info() sdk.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Schema is the provider's settings schema as its binary last declared
// it, even if that start then failed (its settings refused); ok is false
// before any Info passed its checks.
func (p *Process) Schema() (schema sdk.Schema, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.schema, p.knowsSchema
}

// Refresh re-runs Activate, as the host does on a schedule.
func (p *Process) Refresh(ctx context.Context) {
	err := p.Call(ctx, func(prov sdk.Provider) error {
		act, err := prov.Activate(ctx)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.activation = act
		p.mu.Unlock()
		return nil
	})
	if err != nil {
		p.mu.Lock()
		p.activation = FailedActivation(err)
		p.mu.Unlock()
	}
}
