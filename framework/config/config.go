package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/twofactor/twofactor/framework"
)

// EnvPrefix starts every environment variable the host reads.
const EnvPrefix = "TWOFACTOR_"

// DefaultListen is where the service listens when the config says nothing:
// loopback only, so a fresh install is not exposed by accident.
const DefaultListen = "127.0.0.1:8740"

// Scope is what an API key may do.
type Scope string

// API key scopes.
const (
	ScopeApp   Scope = "app"   // enroll and verify users
	ScopeAdmin Scope = "admin" // also list providers and reset users
)

// APIKey is one credential for the HTTP API. Only a hash of the key is
// kept after loading.
type APIKey struct {
	Name  string
	Scope Scope
	Hash  [sha256.Size]byte
}

// Provider is one provider's block.
type Provider struct {
	Name     string
	Enabled  bool
	Staff    bool
	Clients  bool
	SHA256   string
	Settings map[string]string
	// Timeout bounds the host's Enroll and Verify calls to the provider
	// (providers.NAME.timeout); zero means the supervisor's default (5 s).
	Timeout time.Duration
	// Exposed: the settings written inline in a config file its group or
	// others may read; nil when there are none. The provider is refused
	// if its schema marks one of them Secret (ProviderSpec.Exposed).
	Exposed *framework.Exposure
}

// Spec is the provider as the framework runs it from binary: the one
// place a block becomes a ProviderSpec, for serve and for doctor alike
// (doctor's own copy once left out Timeout and judged Activate by another
// deadline than serve's).
func (p Provider) Spec(binary string) framework.ProviderSpec {
	return framework.ProviderSpec{Name: p.Name, Staff: p.Staff, Clients: p.Clients, Settings: p.Settings, Binary: binary,
		SHA256: p.SHA256, Timeout: p.Timeout, Exposed: p.Exposed}
}

// Config is a loaded, validated configuration.
type Config struct {
	Listen        string
	EncryptionKey []byte
	PreviousKeys  [][]byte // still decrypt; see twofactor rekey
	StorageDriver string
	StorageDSN    string // for sqlite, an absolute file path
	APIKeys       []APIKey
	PluginsDir    string // absolute
	Providers     []Provider
	LogLevel      string
	LogFormat     string
	Lockout       framework.LockoutPolicy
	PushLimit     framework.PushLimit // lockout.max_pushes per lockout.push_window
	// Source is where this config was read from, to read it again on a
	// reload; Hash is the SHA-256 of the file then, and Mode its
	// permission bits (who may read it decides what of it may load).
	Source Source
	Hash   string
	Mode   os.FileMode
	// Unended: the file's last byte is not a newline. A file its writer
	// finished ends with one; a file cut short (a full disk that failed
	// the write, a writer killed or still writing) almost never does, and
	// its cut last line may still parse, as a key with no value: false,
	// the default. A live reload refuses it (the host's reload), so a
	// running host keeps its configuration rather than take a policy
	// the admin never wrote.
	Unended bool
	// MetricsPublic serves GET /metrics without an API key; by default it
	// needs an admin key (metrics reveal how many users log in and fail).
	MetricsPublic bool
	Policy        framework.Policy // policy.staff, policy.client
	// ShutdownTimeout bounds a graceful stop (SIGTERM): in-flight requests,
	// then the plugins, SIGKILLed if they do not stop (shutdown_timeout).
	ShutdownTimeout time.Duration
}

// Bounds of the timeouts an admin may set. A provider call past MaxTimeout
// would outlive the HTTP server's write timeout (90 s).
const (
	DefaultShutdownTimeout = 30 * time.Second
	MinTimeout             = 100 * time.Millisecond
	MaxTimeout             = 60 * time.Second
	MaxShutdownTimeout     = 10 * time.Minute
)

// Error is a refused configuration; Key is the dotted path at fault.
type Error struct {
	Key     string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Message) }

func keyErr(key, format string, args ...any) error {
	return &Error{Key: key, Message: fmt.Sprintf(format, args...)}
}

// Source says where to read the configuration from.
type Source struct {
	// File is the YAML file; relative paths inside it (storage.dsn,
	// plugins.dir) are resolved against its folder.
	File string
	// Environ is the environment, os.Environ() when nil.
	Environ []string
	// Overrides are applied last, keyed by dotted path (from flags).
	Overrides map[string]any
	// AllowWeakPreviousKeys accepts a weak key under
	// previous_encryption_keys: twofactor rekey sets it, since re-encrypting
	// under a new key is the way off a weak one. Everything else refuses.
	AllowWeakPreviousKeys bool
}

// Load reads, merges and validates the configuration.
func Load(src Source) (*Config, error) {
	k := koanf.New(".")
	if src.File == "" {
		return nil, errors.New("config: no config file given (use --config FILE; twofactor init writes one)")
	}
	// Who may rewrite the file is judged before it is read (filemode.go).
	if err := checkWritable(src.File); err != nil {
		return nil, err
	}
	unended, err := loadFile(k, src.File)
	if err != nil {
		return nil, err
	}
	secrets := inlineSecrets(k) // the file's own, before the environment
	settings := inlineSettings(k)
	environ := src.Environ
	if environ == nil {
		environ = os.Environ()
	}
	// API keys are a list in the file; koanf would read
	// TWOFACTOR_API_KEYS__0__KEY as a map {"0": …} that replaces it, so
	// those variables are set aside and merged into the list by index.
	var apiEnv []apiKeyEnv
	var apiEnvErr error
	err = k.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
			key = strings.ReplaceAll(key, "__", ".")
			if strings.HasPrefix(key, apiKeysEnvPrefix) {
				e, err := parseAPIKeyEnv(key, v)
				apiEnv, apiEnvErr = append(apiEnv, e), cmp.Or(apiEnvErr, err)
				return "", nil
			}
			return key, v
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	if apiEnvErr != nil {
		return nil, apiEnvErr
	}
	if err := mergeAPIKeyEnv(k, apiEnv); err != nil {
		return nil, err
	}
	if len(src.Overrides) > 0 {
		if err := k.Load(confmap.Provider(src.Overrides, "."), nil); err != nil {
			return nil, fmt.Errorf("config: overrides: %w", err)
		}
	}
	base, err := filepath.Abs(filepath.Dir(src.File))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(k, base, src.AllowWeakPreviousKeys)
	if err != nil {
		return nil, err
	}
	if err := checkReadable(src.File, secrets); err != nil {
		return nil, err
	}
	if err := exposeSettings(c, src.File, settings); err != nil {
		return nil, err
	}
	c.Source, c.Unended = src, unended
	if c.Hash, err = fileHash(src.File); err != nil {
		return nil, err
	}
	fi, err := os.Stat(src.File)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", src.File, err)
	}
	c.Mode = fi.Mode().Perm()
	return c, nil
}

func fileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: read %s: %w", path, err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

var (
	topKeys = []string{"listen", "encryption_key", "previous_encryption_keys", "storage.driver", "storage.dsn", "api_keys", "plugins.dir", "log.level", "log.format",
		"lockout.free_attempts", "lockout.backoff", "lockout.max_backoff", "lockout.max_failures", "lockout.max_pushes", "lockout.push_window", "metrics.public", "shutdown_timeout"}
	providerKeys = []string{"enabled", "staff", audienceWord, "sha256", "timeout"}
	providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
)

func parse(k *koanf.Koanf, base string, allowWeakPrevious bool) (*Config, error) {
	k, err := canonical(k)
	if err != nil {
		return nil, err
	}
	keys := k.Keys()
	slices.Sort(keys)
	for _, key := range keys {
		if err := checkKnown(key); err != nil {
			return nil, err
		}
	}
	c := &Config{
		Listen: k.String("listen"), StorageDriver: k.String("storage.driver"),
		LogLevel: k.String("log.level"), LogFormat: k.String("log.format"),
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		return nil, keyErr("listen", "%q is not host:port", c.Listen)
	}
	if err := c.parseKey(k, allowWeakPrevious); err != nil {
		return nil, err
	}
	if c.StorageDriver == "" {
		c.StorageDriver = "sqlite"
	}
	c.StorageDSN = k.String("storage.dsn")
	switch c.StorageDriver {
	case "sqlite":
		if c.StorageDSN == "" {
			return nil, keyErr("storage.dsn", "missing: the SQLite database file, e.g. twofactor.db")
		}
		c.StorageDSN = resolve(base, c.StorageDSN)
	case "postgres":
		if !strings.HasPrefix(c.StorageDSN, "postgres://") && !strings.HasPrefix(c.StorageDSN, "postgresql://") {
			return nil, keyErr("storage.dsn", "must be a postgres:// URL, e.g. postgres://twofactor@db.internal:5432/twofactor?sslmode=verify-full")
		}
	default:
		return nil, keyErr("storage.driver", "%q is not supported (supported: sqlite, postgres)", c.StorageDriver)
	}
	c.PluginsDir = k.String("plugins.dir")
	if c.PluginsDir == "" {
		return nil, keyErr("plugins.dir", "missing: the folder holding twofactor-provider-* binaries")
	}
	c.PluginsDir = resolve(base, c.PluginsDir)
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if !slices.Contains([]string{"trace", "debug", "info", "warn", "error"}, c.LogLevel) {
		return nil, keyErr("log.level", "%q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, keyErr("log.format", "%q is not text or json", c.LogFormat)
	}
	if err := c.parseAPIKeys(k, base); err != nil {
		return nil, err
	}
	if err := c.parseLockout(k); err != nil {
		return nil, err
	}
	public, err := boolKey(k, "metrics.public")
	if err != nil {
		return nil, err
	}
	c.MetricsPublic = public
	if c.ShutdownTimeout, err = boundedDuration(k, "shutdown_timeout", DefaultShutdownTimeout, time.Second, MaxShutdownTimeout); err != nil {
		return nil, err
	}
	if err := c.parseProviders(k); err != nil {
		return c, err
	}
	return c, c.parsePolicy(k)
}

func checkKnown(key string) error {
	// An empty name ("": in the YAML, or a dot at either end of a name,
	// which koanf reads as a path separator) would otherwise give an error
	// naming no key at all (fuzz find FuzzLoad/empty_key_name).
	if slices.Contains(strings.Split(key, "."), "") {
		return keyErr(strconv.Quote(key), "a key name is empty")
	}
	if slices.Contains(topKeys, key) || isPolicyKey(key) {
		return nil
	}
	parts := strings.SplitN(key, ".", 4)
	if parts[0] == "providers" && len(parts) >= 3 {
		if !providerName.MatchString(parts[1]) {
			return keyErr("providers."+parts[1], "provider name must match %s", providerName)
		}
		if len(parts) == 3 && slices.Contains(providerKeys, parts[2]) {
			return nil
		}
		if len(parts) == 4 && parts[2] == "settings" && !strings.Contains(parts[3], ".") {
			return nil
		}
	}
	return unknownKeyErr(key)
}

func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

func (c *Config) parseKey(k *koanf.Koanf, allowWeakPrevious bool) error {
	raw := strings.TrimSpace(k.String("encryption_key"))
	if raw == "" {
		return keyErr("encryption_key", "missing; %s", KeygenHint)
	}
	key, why, malformed := encryptionKey(raw)
	switch {
	case malformed:
		return keyErr("encryption_key", "%s; %s", why, KeygenHint)
	case why != "":
		// The way off a weak key that already encrypts data is a rotation,
		// which is why rekey accepts a weak previous key (Source).
		return keyErr("encryption_key", "%s; %s. If this host already has enrollments, move this key to "+
			"previous_encryption_keys, set the new one here and run twofactor rekey", why, KeygenHint)
	}
	c.EncryptionKey = key
	// A list in YAML; from the environment, comma-separated.
	var prev []string
	switch v := k.Get("previous_encryption_keys").(type) {
	case nil:
	case string:
		prev = strings.Split(v, ",")
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return keyErr("previous_encryption_keys", "must be a list of base64 keys")
			}
			prev = append(prev, s)
		}
	default:
		return keyErr("previous_encryption_keys", "must be a list of base64 keys")
	}
	for i, raw := range prev {
		at := fmt.Sprintf("previous_encryption_keys[%d]", i)
		old, why, malformed := encryptionKey(strings.TrimSpace(raw))
		if malformed {
			return keyErr(at, "%s: no data can be encrypted under it; remove it", why)
		}
		if string(old) == string(key) {
			return keyErr(at, "is the same as encryption_key")
		}
		if why != "" && !allowWeakPrevious {
			return keyErr(at, "%s: run twofactor rekey to re-encrypt every enrollment under encryption_key, then remove it", why)
		}
		c.PreviousKeys = append(c.PreviousKeys, old)
	}
	return nil
}

// LogFormatOf is the log.format src asks for ("text" when it cannot tell),
// read from the file and the environment without judging anything else:
// a command prints its fatal error, a refused config included, in the
// format every other line of the process would have had.
func LogFormatOf(src Source) string {
	k := koanf.New(".")
	if src.File != "" {
		_ = k.Load(file.Provider(src.File), yaml.Parser())
	}
	format := k.String("log.format")
	environ := src.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		// As Load reads it: the prefix as written, the path in any case.
		if name, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) &&
			strings.EqualFold(strings.TrimPrefix(name, EnvPrefix), "LOG__FORMAT") {
			format = v
		}
	}
	if f, ok := src.Overrides["log.format"].(string); ok {
		format = f
	}
	if format == "json" {
		return "json"
	}
	return "text"
}
