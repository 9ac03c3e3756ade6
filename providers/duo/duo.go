package duo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Version is the provider's own release version.
const Version = "1.0.0"

// Setting names.
const (
	settingIntegrationKey  = "integration_key"
	settingSecretKey       = "secret_key"
	settingAPIHostname     = "api_hostname"
	settingAllowCustomHost = "allow_custom_host"
	settingFailmode        = "failmode"
	settingTimeout         = "timeout"
	settingPushInfo        = "push_info"
	settingDisplayUsername = "display_username"
	settingCAFile          = "ca_file"
)

// Failmodes.
const (
	failmodeSecure = "secure"
	failmodeSafe   = "safe"
)

// Limits.
const (
	minTimeout     = time.Second
	maxTimeout     = 2 * time.Minute
	maxPushInfoLen = 20000 // Duo's limit is "under 20,000 bytes"
	maxCAFileLen   = 1 << 20
	// offsetWarn is the clock offset above which Activate reports the
	// provider degraded: Duo rejects requests more than about 60 s off, and
	// only the measured offset keeps this server's requests inside.
	offsetWarn = 30 * time.Second
	// offsetMaxAge is how old a clock offset may get before a Verify or
	// Enroll measures it again (besides every Activate).
	offsetMaxAge = 10 * time.Minute
)

var (
	integrationKeyRE = regexp.MustCompile(`^DI[A-Z0-9]{18}$`)
	duoHostRE        = regexp.MustCompile(`^api-[a-z0-9]+\.duosecurity\.com$`)
)

const adminPanelPath = "Duo Admin Panel → Applications → Protect an Application → Auth API"

var schema = sdk.Schema{
	{
		Name:     settingIntegrationKey,
		Type:     sdk.TypeString,
		Required: true,
		Help: "Integration key of a Duo Auth API application (" + adminPanelPath + "): " +
			"20 characters starting with DI.",
	},
	{
		Name:     settingSecretKey,
		Type:     sdk.TypeString,
		Required: true,
		Secret:   true,
		Help: "Secret key of the same Auth API application: 40 characters. Keep it out of the config " +
			"file by setting it from the environment.",
	},
	{
		Name:     settingAPIHostname,
		Type:     sdk.TypeString,
		Required: true,
		Help: "API hostname of the same Auth API application, such as api-1a2b3c4d.duosecurity.com " +
			"(without https://). Other hosts are refused unless allow_custom_host is true.",
	},
	{
		Name:    settingAllowCustomHost,
		Type:    sdk.TypeBool,
		Default: "false",
		Help: "Accept any host[:port] as api_hostname. Only for a Duo emulator in tests and demos; " +
			"leave false in production.",
	},
	{
		Name:    settingFailmode,
		Type:    sdk.TypeString,
		Default: failmodeSecure,
		Enum:    []string{failmodeSecure, failmodeSafe},
		Help: "What a verification answers when Duo cannot be reached (network error, 5xx, malformed " +
			"answer, rate limit beyond the timeout, timeout): secure denies; safe lets the user in without " +
			"a second factor, and every such login is audited as failmode_safe.",
	},
	{
		Name:    settingTimeout,
		Type:    sdk.TypeDuration,
		Default: "10s",
		Help: "Longest time one call (Activate, an enrollment step, a verification or a push poll) " +
			"waits for Duo, 1s to 2m. A push poll that reaches it reports pending.",
	},
	{
		Name: settingPushInfo,
		Type: sdk.TypeString,
		Help: "Extra lines shown in Duo Push requests, as URL-encoded key=value pairs such as " +
			"\"app=Billing&env=production\" (under 20000 bytes).",
	},
	{
		Name:    settingDisplayUsername,
		Type:    sdk.TypeBool,
		Default: "false",
		Help: "Show the user's account name as the host application knows it (or else its user id) " +
			"in Duo Mobile instead of the Duo username.",
	},
	{
		Name: settingCAFile,
		Type: sdk.TypeString,
		Help: "Path to a PEM file of extra CA certificates to trust for api_hostname, on top of the " +
			"system roots. For a Duo emulator or a TLS-inspecting proxy; not needed for Duo itself.",
	},
}

// cloneSchema returns a copy of the schema that a caller may modify
// without changing what Configure enforces.
func cloneSchema() sdk.Schema {
	s := slices.Clone(schema)
	for i := range s {
		s[i].Enum = slices.Clone(s[i].Enum)
	}
	return s
}

// config is one parsed set of settings with its client. It is never
// modified after Configure publishes it.
type config struct {
	ikey            string
	host            string
	failmode        string
	timeout         time.Duration
	pushInfo        string
	displayUsername bool
	client          *authapi.Client
	// refreshing is set while one call re-measures the clock offset, so
	// that concurrent calls do not all ping Duo.
	refreshing atomic.Bool
}

// Provider is the Duo provider. The zero value is not configured; use New.
type Provider struct {
	cfg   atomic.Pointer[config]
	log   hclog.Logger
	roots *x509.CertPool
	now   func() time.Time
}

var _ sdk.Provider = (*Provider)(nil)

// Option adjusts a new Provider.
type Option func(*Provider)

// WithLogger sends the provider's log lines to l; in a plugin binary pass
// sdk.Logger(), whose lines the host re-emits under the provider's name.
func WithLogger(l hclog.Logger) Option { return func(p *Provider) { p.log = l } }

// WithRootCAs makes the provider trust pool instead of the system roots
// (ca_file certificates are still added). For in-process tests against an
// emulator.
func WithRootCAs(pool *x509.CertPool) Option { return func(p *Provider) { p.roots = pool } }

// WithClock replaces this machine's clock, which requests are signed with
// (plus the offset measured from Duo). For tests of clock drift.
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// New returns an unconfigured Duo provider. It logs nothing unless given
// WithLogger.
func New(opts ...Option) *Provider {
	p := &Provider{log: hclog.NewNullLogger(), now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info describes the provider. It works before Configure.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:            "duo",
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Description:     "Duo Security passcodes and Duo Push through Duo's Auth API v2.",
		Schema:          cloneSchema(),
		Capabilities:    sdk.Capabilities{Code: true, Push: true},
	}, nil
}

// Configure validates settings and replaces the current ones without
// contacting Duo (Activate does that). On error the previous settings stay
// in force. No error message contains the secret key.
func (p *Provider) Configure(_ context.Context, settings sdk.Settings) error {
	err := p.configure(settings)
	if err != nil {
		// A safety net: the checks never quote the secret key, but a secret
		// key pasted into another field could be quoted as that field's
		// value.
		if skey := settings[settingSecretKey]; len(skey) >= 8 && strings.Contains(err.Error(), skey) {
			var se *sdk.Error
			if errors.As(err, &se) {
				return &sdk.Error{Kind: se.Kind, Field: se.Field,
					Message: strings.ReplaceAll(se.Message, skey, "(the secret key)")}
			}
			return sdk.Errorf(sdk.KindInvalidSettings, "invalid settings")
		}
	}
	return err
}

func (p *Provider) configure(settings sdk.Settings) error {
	v, err := schema.Parse(settings)
	if err != nil {
		return err
	}
	c := &config{
		ikey:            v.String(settingIntegrationKey),
		host:            v.String(settingAPIHostname),
		failmode:        v.String(settingFailmode),
		timeout:         v.Duration(settingTimeout),
		pushInfo:        v.String(settingPushInfo),
		displayUsername: v.Bool(settingDisplayUsername),
	}
	skey := v.String(settingSecretKey)
	if err := checkIntegrationKey(c.ikey); err != nil {
		return err
	}
	if err := checkSecretKey(skey); err != nil {
		return err
	}
	if err := checkHost(c.host, v.Bool(settingAllowCustomHost)); err != nil {
		return err
	}
	if c.timeout < minTimeout || c.timeout > maxTimeout {
		return sdk.FieldError(sdk.KindInvalidSettings, settingTimeout, "%s is outside [%s, %s]", c.timeout, minTimeout, maxTimeout)
	}
	if err := checkPushInfo(c.pushInfo); err != nil {
		return err
	}
	roots, err := p.rootCAs(v.String(settingCAFile))
	if err != nil {
		return err
	}
	client, err := authapi.New(authapi.Config{
		IntegrationKey: c.ikey,
		SecretKey:      skey,
		Host:           c.host,
		RootCAs:        roots,
		Now:            p.now,
		UserAgent:      "twofactor-provider-duo/" + Version,
	})
	if err != nil {
		// The settings were checked above; this is a bug. authapi's
		// messages never contain the secret key.
		return sdk.Errorf(sdk.KindInternal, "%v", err)
	}
	c.client = client
	if old := p.cfg.Load(); old != nil && old.host == c.host {
		// Same Duo: keep the measured clock offset.
		client.SetOffset(old.client.Offset())
	}
	if old := p.cfg.Swap(c); old != nil {
		old.client.CloseIdleConnections()
	}
	p.log.Info("configured", "integration_key", c.ikey, "api_hostname", c.host, "failmode", c.failmode,
		"timeout", c.timeout, "display_username", c.displayUsername, "push_info", c.pushInfo != "",
		"ca_file", v.String(settingCAFile))
	return nil
}

func checkIntegrationKey(k string) error {
	if integrationKeyRE.MatchString(k) {
		return nil
	}
	// The value is not quoted: a secret key pasted here must not end up in
	// an error message.
	msg := fmt.Sprintf("is not an integration key: it has 20 characters, \"DI\" and then 18 upper-case letters "+
		"and digits (got %d characters); copy it from %s", len(k), adminPanelPath)
	switch {
	case strings.TrimSpace(k) != k:
		msg = "has leading or trailing spaces"
	case len(k) == 40:
		msg = "looks like a secret key (40 characters); the integration key is the 20-character value starting with DI"
	}
	return sdk.FieldError(sdk.KindInvalidSettings, settingIntegrationKey, "%s", msg)
}

func checkSecretKey(k string) error {
	var msg string
	switch {
	case strings.TrimSpace(k) != k:
		msg = "has leading or trailing spaces"
	case integrationKeyRE.MatchString(k):
		msg = "looks like an integration key; the secret key is the 40-character value next to it"
	case len(k) != 40:
		msg = fmt.Sprintf("must be 40 characters (got %d); copy it from %s", len(k), adminPanelPath)
	case strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		msg = "must be printable ASCII characters"
	default:
		return nil
	}
	return sdk.FieldError(sdk.KindInvalidSettings, settingSecretKey, "%s", msg)
}

func checkHost(h string, custom bool) error {
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingAPIHostname, format, args...)
	}
	// Quote the value only when it looks like a host name, never a
	// (dot-less) key pasted into the wrong field.
	shown := "value"
	if strings.ContainsAny(h, ".:/") && len(h) <= 253 {
		shown = strconv.Quote(h)
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@") {
		return bad("%s must be a host name only, such as api-1a2b3c4d.duosecurity.com, without https:// or a path", shown)
	}
	if !custom {
		if !duoHostRE.MatchString(h) {
			return bad("%s is not a Duo API hostname (api-XXXXXXXX.duosecurity.com in lower case, from %s); "+
				"set allow_custom_host: true only for an emulator", shown, adminPanelPath)
		}
		return nil
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return bad("%s is not a host[:port]", shown)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(h, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("%s has a bad port", shown)
		}
	}
	if name := u.Hostname(); net.ParseIP(name) == nil {
		for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
			if label == "" || len(label) > 63 || strings.IndexFunc(label, func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-')
			}) >= 0 {
				return bad("%s is not a valid host name", shown)
			}
		}
	}
	return nil
}

func checkPushInfo(s string) error {
	if s == "" {
		return nil
	}
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingPushInfo, format, args...)
	}
	if len(s) >= maxPushInfoLen {
		return bad("is %d bytes; Duo accepts under %d", len(s), maxPushInfoLen)
	}
	vals, err := url.ParseQuery(s)
	if err != nil {
		return bad("is not URL-encoded key=value pairs joined by &: %v", err)
	}
	for _, pair := range strings.Split(s, "&") {
		k, _, found := strings.Cut(pair, "=")
		if !found || k == "" {
			return bad("every part must be key=value (URL-encoded), such as app=Billing&env=production")
		}
	}
	if len(vals) == 0 {
		return bad("has no key=value pair")
	}
	return nil
}

// rootCAs returns the pool to verify Duo's certificate with: the
// WithRootCAs pool or nil (the system roots), plus ca_file's certificates.
func (p *Provider) rootCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return p.roots, nil
	}
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingCAFile, format, args...)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, bad("cannot read %q: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFileLen+1))
	if err != nil {
		return nil, bad("cannot read %q: %v", path, err)
	}
	if len(pem) > maxCAFileLen {
		return nil, bad("%q is larger than %d bytes", path, maxCAFileLen)
	}
	var pool *x509.CertPool
	switch {
	case p.roots != nil:
		pool = p.roots.Clone()
	default:
		if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, bad("%q contains no PEM certificate", path)
	}
	return pool, nil
}

func (p *Provider) current() (*config, error) {
	c := p.cfg.Load()
	if c == nil {
		return nil, sdk.Errorf(sdk.KindNotConfigured, "duo provider is not configured")
	}
	return c, nil
}

// formatOffset shows a clock offset in whole seconds, e.g. "-90s".
func formatOffset(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d.Round(time.Second)/time.Second))
}

// Activate checks the settings against Duo: it measures this server's
// clock offset with the unsigned ping (every later request is signed with
// the corrected time), then calls the signed check, which fails if the
// integration key, the secret key or the API hostname is wrong. The offset
// is always reported as the "clock_offset" diagnostic; above 30 s the
// provider is degraded.
func (p *Provider) Activate(ctx context.Context) (sdk.Activation, error) {
	c, err := p.current()
	if err != nil {
		return sdk.Activation{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	off, err := c.client.MeasureOffset(ctx)
	if err != nil {
		p.log.Warn("activate: ping failed", "api_hostname", c.host, "error", err)
		return sdk.Activation{}, c.activateError(err, 0, false)
	}
	if _, err := c.client.Check(ctx); err != nil {
		p.log.Warn("activate: check failed", "api_hostname", c.host, "integration_key", c.ikey,
			"clock_offset", formatOffset(off), "error", err)
		return sdk.Activation{}, c.activateError(err, off, true)
	}
	a := sdk.Activation{Health: sdk.Healthy}
	d := sdk.Diagnostic{
		Code:    "clock_offset",
		Value:   formatOffset(off),
		Message: "Duo's clock minus this server's clock; requests are signed with Duo's time",
	}
	if off.Abs() > offsetWarn {
		a.Health = sdk.Degraded
		d.Message = fmt.Sprintf("this server's clock is %s off Duo's; Duo logins still work because requests are "+
			"signed with Duo's time, but sync this server's clock with NTP", formatOffset(off.Abs()))
	}
	a.Diagnostics = append(a.Diagnostics, d)
	if c.failmode == failmodeSafe {
		a.Diagnostics = append(a.Diagnostics, sdk.Diagnostic{
			Code:    "failmode",
			Value:   failmodeSafe,
			Message: "when Duo cannot be reached, users are let in without a second factor",
		})
	}
	p.log.Info("activated", "api_hostname", c.host, "health", a.Health, "clock_offset", d.Value)
	return a, nil
}

// activateError explains why Activate failed.
func (c *config) activateError(err error, off time.Duration, measured bool) error {
	if e, ok := authapi.AsError(err); ok && !authapi.IsUnavailable(err) {
		switch {
		case e.IsInvalidIntegrationKey():
			return sdk.FieldError(sdk.KindInvalidCredentials, settingIntegrationKey,
				"Duo does not know integration key %s (Duo: %s): check it was copied from an Auth API application "+
					"(%s), and that api_hostname (%s) is that application's", c.ikey, e.Message, adminPanelPath, c.host)
		case e.IsForbidden():
			return sdk.FieldError(sdk.KindInvalidCredentials, settingIntegrationKey,
				"integration key %s belongs to another kind of Duo application (Duo: %d %s), such as Web SDK / "+
					"Universal Prompt or Admin API; this provider needs the keys of an Auth API application: "+
					"create one in %s", c.ikey, e.Code, e.Message, adminPanelPath)
		case e.IsInvalidSignature():
			return sdk.FieldError(sdk.KindInvalidCredentials, settingSecretKey,
				"secret key or API hostname is wrong: Duo knows integration key %s but rejected the request's "+
					"signature (Duo: %s); copy the secret key of the same Auth API application, and check that "+
					"api_hostname %s is exactly the one shown with it", c.ikey, e.Message, c.host)
		case e.IsBadTimestamp():
			msg := fmt.Sprintf("Duo rejected the request's time (Duo: %d %s)", e.Code, e.Message)
			if measured {
				msg = fmt.Sprintf("this server's clock is %s off Duo's; sync it with NTP (Duo: %d %s)",
					formatOffset(off.Abs()), e.Code, e.Message)
			}
			return sdk.Errorf(sdk.KindClockSkew, "%s", msg)
		default:
			return sdk.Errorf(sdk.KindInvalidCredentials, "Duo at %s refused the check: %v", c.host, e)
		}
	}
	return c.unavailableError(err)
}

// unavailableError is the sdk error for a Duo that cannot be reached, or
// an internal error for anything else (a bug).
func (c *config) unavailableError(err error) error {
	if authapi.IsUnavailable(err) {
		return sdk.Errorf(sdk.KindUnavailable, "Duo at %s is unavailable: %v", c.host, err)
	}
	return sdk.Errorf(sdk.KindInternal, "duo: %v", err)
}

// credentialsError maps a definite Duo error about the keys, the host name
// or the clock, met during Enroll or Verify, to the matching sdk error; ok
// is false for other errors.
func (c *config) credentialsError(err error) (error, bool) {
	e, ok := authapi.AsError(err)
	if !ok || authapi.IsUnavailable(err) {
		return nil, false
	}
	if e.IsInvalidIntegrationKey() || e.IsForbidden() || e.IsInvalidSignature() || e.IsBadTimestamp() {
		off, _ := c.client.Offset()
		return c.activateError(err, off, true), true
	}
	return nil, false
}

// ensureOffset re-measures the clock offset when it was never measured or
// is older than offsetMaxAge. Only one call at a time does so; the others
// go on with the offset they have. A failed ping is left to the request
// that follows, which meets the same failure.
func (c *config) ensureOffset(ctx context.Context, now time.Time) {
	_, at := c.client.Offset()
	if !at.IsZero() && now.Sub(at) < offsetMaxAge && at.Sub(now) < offsetMaxAge {
		return
	}
	if !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	defer c.refreshing.Store(false)
	c.client.MeasureOffset(ctx)
}
