package framework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk"
)

// Audience is who is logging in; each provider is enabled per audience.
type Audience string

// Audiences, as a billing panel has them.
const (
	AudienceStaff  Audience = "staff"
	AudienceClient Audience = "client"
)

// Options configure a Framework.
type Options struct {
	Store Store
	// EncryptionKey seals every provider state at rest (AES-256-GCM); it
	// must be KeySize random bytes (crypto/rand). New refuses a key that
	// is not, by the rule the host's encryption_key is held to: all zeros
	// (a key allocated and never filled), one byte repeated, text put
	// through base64, a short pattern repeated, a counter.
	EncryptionKey []byte
	// PreviousKeys still open data sealed before a key rotation; see
	// Rekey. Each is held to EncryptionKey's rule, and none may equal it.
	PreviousKeys [][]byte
	// AllowWeakPreviousKeys accepts a previous key that fails that rule:
	// the way off a weak key that already sealed data is to make it a
	// previous key and Rekey (the host's rekey command sets it). The
	// current key is always checked.
	AllowWeakPreviousKeys bool
	Providers             []ProviderSpec
	Logger                hclog.Logger
	// Now is the trusted clock; time.Now when nil. Tests inject one.
	Now func() time.Time
	// PendingTTL is how long a begun enrollment may wait for confirmation;
	// 15 minutes when zero.
	PendingTTL time.Duration
	// Lockout is the attempt budget; zero fields take
	// DefaultLockoutPolicy's values.
	Lockout LockoutPolicy
	// PushLimit bounds the pushes sent to one user by one provider; zero
	// fields take DefaultPushLimit's values.
	PushLimit PushLimit
	// Sleep waits (padding not-enrolled answers to a provider's usual
	// time); tests inject one. A timer honouring ctx when nil.
	Sleep func(ctx context.Context, d time.Duration)
	// Observer is told of every verify decision and lockout, for metrics;
	// nil ignores them. See Observer.
	Observer Observer
	// Policy is the login policy per audience (see Challenge); the zero
	// value requires nothing and remembers no device.
	Policy Policy
	// Supervision tunes the provider supervisors (health pings, hang
	// detection, kill grace); the zero value takes their defaults.
	Supervision Supervision
}

// Framework is the host-side core: it runs the providers and the
// enrollment and verification flows over a Store.
type Framework struct {
	store        Store
	recoveryHash *recoveryHasher
	lockout      LockoutPolicy
	pushLimit    PushLimit
	seal         *sealer
	log          hclog.Logger
	obs          Observer
	now          func() time.Time
	sleep        func(ctx context.Context, d time.Duration)
	pendingTTL   time.Duration
	supervision  Supervision
	// reg is swapped whole by Reconfigure: a request works on one
	// consistent set of providers and policy from start to end.
	reg       atomic.Pointer[registry]
	reloadMu  sync.Mutex // one Reconfigure at a time
	closeOnce sync.Once
	// asked throttles freeDenied's questions to the provider about
	// another login's pending push.
	asked askThrottle
}

// registry is one configuration's providers and login policy.
type registry struct {
	providers map[string]*managed
	audiences map[string]audiences // by provider name, from its spec
	names     []string             // sorted
	policy    Policy
}

// audiences says whom a provider serves.
type audiences struct{ staff, clients bool }

func (f *Framework) registry() *registry { return f.reg.Load() }

// New validates the options and starts every provider. A configuration
// mistake (a missing binary, a setting the provider refuses) is an error; a
// provider that starts but whose backend is down is not: the framework
// runs, calls to that provider fail as unavailable, and it is retried.
func New(ctx context.Context, opts Options) (*Framework, error) {
	if opts.Store == nil {
		return nil, errors.New("framework: a Store is required")
	}
	seal, err := newSealer(opts.EncryptionKey, opts.PreviousKeys...)
	if err == nil {
		err = checkKeys(opts.EncryptionKey, opts.PreviousKeys, opts.AllowWeakPreviousKeys)
	}
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	f := &Framework{
		store: opts.Store, lockout: opts.Lockout.withDefaults(), seal: seal,
		log: opts.Logger, now: opts.Now,
		pendingTTL: opts.PendingTTL, pushLimit: opts.PushLimit.withDefaults(), supervision: opts.Supervision,
	}
	f.reg.Store(&registry{providers: map[string]*managed{}, audiences: map[string]audiences{}, policy: opts.Policy.withDefaults()})
	if f.log == nil {
		f.log = hclog.NewNullLogger()
	}
	if f.obs = opts.Observer; f.obs == nil {
		f.obs = NopObserver{}
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.sleep = opts.Sleep
	if f.sleep == nil {
		f.sleep = sleepCtx
	}
	if f.pendingTTL == 0 {
		f.pendingTTL = 15 * time.Minute
	}
	// Before any provider starts: a wrong key must stop us here.
	pepper, err := f.hostSecret(ctx, secretRecoveryPepper)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	if f.recoveryHash, err = newRecoveryHasher(pepper); err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	reg, err := f.startRegistry(ctx, opts.Providers, opts.Policy.withDefaults(), nil, false)
	if err != nil {
		return nil, err
	}
	f.reg.Store(reg)
	f.warnStranded(ctx, reg)
	return f, nil
}

// ProviderError is New's refusal of one provider's configuration. Err is
// an *sdk.Error of KindInvalidSettings when the provider refused a
// setting; its Field names the setting.
type ProviderError struct {
	Provider string
	Err      error
}

func (e *ProviderError) Error() string { return "framework: " + e.Err.Error() }

func (e *ProviderError) Unwrap() error { return e.Err }

func checkSpec(s ProviderSpec) error {
	if !providerName.MatchString(s.Name) {
		return fmt.Errorf("provider name %q must match %s", s.Name, providerName)
	}
	if s.Name == RecoveryProvider {
		return fmt.Errorf("provider name %q is reserved for the host's recovery codes", s.Name)
	}
	if (s.Binary == "") == (s.Impl == nil) {
		return fmt.Errorf("provider %q: set exactly one of Binary and Impl", s.Name)
	}
	if s.SHA256 != "" {
		if sum, err := hex.DecodeString(s.SHA256); err != nil || len(sum) != sha256.Size {
			return fmt.Errorf("provider %q: sha256 pin is not 64 hex digits", s.Name)
		}
	}
	if s.Binary != "" {
		// A missing binary will not appear by retrying: refuse now, naming
		// the path, rather than run with the provider down.
		if fi, err := os.Stat(s.Binary); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("provider %q: no executable plugin binary at %s", s.Name, s.Binary)
		}
	}
	return nil
}

// Close stops every provider. It does not close the Store, which the
// caller owns.
func (f *Framework) Close() error {
	f.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, m := range f.registry().providers {
			wg.Add(1)
			go func() { defer wg.Done(); m.Stop() }()
		}
		wg.Wait()
	})
	return nil
}

// Providers returns every configured provider's status, sorted by name.
func (f *Framework) Providers() []ProviderStatus {
	reg := f.registry()
	out := make([]ProviderStatus, 0, len(reg.names))
	for _, n := range reg.names {
		st := reg.providers[n].Status()
		st.Staff, st.Clients = reg.audiences[n].staff, reg.audiences[n].clients
		out = append(out, st)
	}
	return out
}

// Refresh re-runs Activate on every provider (restarting dead plugins) so
// that health and diagnostics are current.
func (f *Framework) Refresh(ctx context.Context) {
	reg := f.registry()
	for _, n := range reg.names {
		reg.providers[n].Refresh(ctx)
	}
}

// ValidateUserID checks a host application's user id: 1 to 128 printable
// characters, valid UTF-8.
func ValidateUserID(id string) error {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > 128 {
		return errorf(CodeInvalidRequest, nil, "user id must be 1 to 128 characters of valid UTF-8")
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return errorf(CodeInvalidRequest, nil, "user id must contain only printable characters")
		}
	}
	return nil
}

// provider finds a provider and checks the audience may use it.
func (f *Framework) provider(name string, aud Audience) (*managed, error) {
	reg := f.registry()
	m, ok := reg.providers[name]
	if !ok {
		return nil, errorf(CodeUnknownProvider, nil, "no active provider named %q", name)
	}
	switch aud {
	case AudienceStaff:
		if !reg.enabledFor(name, aud) {
			return nil, errorf(CodeAudienceNotAllowed, nil, "provider %q is not enabled for staff", name)
		}
	case AudienceClient:
		if !reg.enabledFor(name, aud) {
			return nil, errorf(CodeAudienceNotAllowed, nil, "provider %q is not enabled for the client audience", name)
		}
	default:
		return nil, errorf(CodeInvalidRequest, nil, "audience must be %q or %q", AudienceStaff, AudienceClient)
	}
	if err := f.checkAllowed(name, aud); err != nil {
		return nil, err
	}
	return m, nil
}

// providerErr turns a provider's error into a framework error.
func providerErr(name string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	switch sdk.KindOf(err) {
	case sdk.KindUnavailable, sdk.KindClockSkew, sdk.KindInvalidCredentials, sdk.KindNotConfigured:
		return errorf(CodeProviderUnavailable, err, "provider %q is unavailable", name)
	case sdk.KindInvalidRequest:
		// The provider's message is the whole story: no cause to repeat.
		var se *sdk.Error
		errors.As(err, &se)
		if se.Field != "" {
			return errorf(CodeInvalidRequest, nil, "%s: %s", se.Field, se.Message)
		}
		return errorf(CodeInvalidRequest, nil, "%s", se.Message)
	}
	if CodeOf(err) == CodeProviderTimeout {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errorf(CodeProviderUnavailable, err, "provider %q did not answer in time", name)
	}
	return errorf(CodeInternal, err, "provider %q failed", name)
}

// pinger is implemented by stores that can check their connection.
type pinger interface {
	Ping(ctx context.Context) error
}

// Ready reports whether the framework can serve: the store answers and
// every provider process is running. The error says what is not ready.
func (f *Framework) Ready(ctx context.Context) error {
	if p, ok := f.store.(pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	var down, hung []string
	for _, st := range f.Providers() {
		switch {
		case st.Hung:
			hung = append(hung, st.Name)
		case !st.Running:
			down = append(down, st.Name)
		}
	}
	// A hung plugin process is this replica's fault (another replica's
	// plugin answers): taking the replica out of rotation is right. A slow
	// shared backend is not reported here; failmode handles it.
	switch {
	case len(hung) > 0:
		return fmt.Errorf("provider plugins not answering health pings: %v", hung)
	case len(down) > 0:
		return fmt.Errorf("providers not running: %v", down)
	}
	return nil
}
