package duo

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"regexp"
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
		Loosens: &sdk.Loosens{Values: []string{"true"}, Why: "any host may answer for Duo"},
	},
	{
		Name:    settingFailmode,
		Type:    sdk.TypeString,
		Default: failmodeSecure,
		Enum:    []string{failmodeSecure, failmodeSafe},
		Help: "What a verification answers when Duo cannot be reached (network error, 5xx, rate limit " +
			"beyond the timeout, timeout; never when Duo answers, whatever it answers): secure denies; safe lets the user in without " +
			"a second factor, and every such login is audited as failmode_safe.",
		Loosens: &sdk.Loosens{Values: []string{failmodeSafe}, Why: "users are let in without a second factor whenever Duo cannot be reached"},
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
	// sleep and jitter pace the retries after a 429; nil means a timer
	// and math/rand. Tests inject them (see authapi.Config).
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(n time.Duration) time.Duration
	// transport, when set, replaces the TLS transport built from the
	// settings: tests that act when a response's headers are in.
	transport http.RoundTripper
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
		Name:         "duo",
		Version:      Version,
		Description:  "Duo Security passcodes (from Duo Mobile, a token or text messages) and Duo Push through Duo's Auth API v2.",
		Schema:       schema.Clone(),
		Capabilities: capabilities,
		CodeInput:    passcodeInput,
		Texts:        texts,
	}, nil
}

// capabilities: passcodes and pushes, and passcodes Duo texts after a
// challenge (factor sms), for a phone without Duo Mobile.
var capabilities = sdk.Capabilities{Code: true, Push: true,
	Factors: []sdk.Factor{FactorAuto, FactorPush, FactorPasscode, FactorSMS}, Challenges: []sdk.Factor{FactorSMS}}

// texts are what the host's pages say about Duo: Duo Mobile's pushes and
// passcodes, and its activation.
var texts = sdk.Texts{
	Name:       "Duo Mobile",
	Choice:     "Approve a request in Duo Mobile, or type a passcode from it.",
	Enroll:     "Protect your account with Duo Mobile: at each sign-in you approve a request on your phone.",
	Prepare:    "Install Duo Mobile on your phone from the App Store or Google Play.",
	SetupTitle: "Activate Duo Mobile",
	Setup:      "Open Duo Mobile, tap + (Add) and scan this barcode. Then come back and continue.",
	ScanAlt:    "Activation barcode to scan with Duo Mobile",
	WrongCode:  "Duo didn't accept that passcode. Enter a new one from Duo Mobile, your Duo token or a Duo text message.",
	Waiting:    "Duo Mobile has not been activated yet. Finish the activation on your phone, then check again.",
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
//
// A Duo that cannot be reached is not an error: the provider reports
// itself unhealthy (diagnostic duo_unreachable, with the fix) and serves,
// because its failmode decides every verification until Duo answers again
// (the host re-runs Activate on a schedule). A definite refusal of the
// credentials, the host or the clock is an error naming the setting, with
// a Fix.
func (p *Provider) Activate(ctx context.Context) (sdk.Activation, error) {
	c, err := p.current()
	if err != nil {
		return sdk.Activation{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	op := "ping"
	off, err := c.client.MeasureOffset(ctx)
	if err == nil {
		op = "check"
		_, err = c.client.Check(ctx)
		off, _ = c.client.Offset()
	}
	switch authapi.Classify(err) {
	case authapi.ClassNone:
	case authapi.ClassUnavailable:
		p.log.Warn("activate: Duo cannot be reached; the failmode decides until it can", "op", op,
			"api_hostname", c.host, "failmode", c.failmode, "error", err)
		return c.withFailmode(c.unreachable(err)), nil
	case authapi.ClassInternal:
		return sdk.Activation{}, sdk.Errorf(sdk.KindInternal, "duo: %v", err)
	default:
		p.log.Warn("activate: Duo refused the "+op, "api_hostname", c.host, "integration_key", c.ikey,
			"clock_offset", formatOffset(off), "error", err)
		return sdk.Activation{}, c.refusal(op, err, off)
	}
	a := sdk.Activation{Health: sdk.Healthy}
	d := sdk.Diagnostic{
		Code:     "clock_offset",
		Value:    formatOffset(off),
		Severity: sdk.SeverityInfo,
		Message:  "Duo's clock minus this server's clock; requests are signed with Duo's time",
	}
	if off.Abs() > offsetWarn {
		a.Health = sdk.Degraded
		d.Severity = sdk.SeverityWarning
		d.Message = fmt.Sprintf("this server's clock is %s off Duo's; Duo logins still work because requests are "+
			"signed with Duo's time, but sync this server's clock with NTP", formatOffset(off.Abs()))
		d.Fix = "sync this server's clock with NTP (chrony, systemd-timesyncd or ntpd); TOTP codes are checked against the same clock"
	}
	a.Diagnostics = append(a.Diagnostics, d)
	p.log.Info("activated", "api_hostname", c.host, "health", a.Health, "clock_offset", d.Value)
	return c.withFailmode(a), nil
}

// withFailmode adds the failmode diagnostic when it lets users in.
func (c *config) withFailmode(a sdk.Activation) sdk.Activation {
	if c.failmode == failmodeSafe {
		a.Diagnostics = append(a.Diagnostics, sdk.Diagnostic{
			Code:     "failmode",
			Value:    failmodeSafe,
			Severity: sdk.SeverityWarning,
			Message:  "when Duo cannot be reached, users are let in without a second factor",
			Fix: "set the " + settingFailmode + " setting to secure unless letting users in without a second factor " +
				"while Duo is down is what you want",
		})
	}
	return a
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
