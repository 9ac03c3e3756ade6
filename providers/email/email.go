// Package email is a first-party provider that sends a one-time code by
// email: the first provider with a challenge step (protocol version 2).
//
// Enrollment asks for the address (Info.EnrollInputs), mails a code and
// is confirmed with it. At login the host calls Challenge, which mails a
// fresh code and keeps only its keyed hash (HMAC-SHA-256 under the
// code_key setting) in the state with its expiry; Verify with the
// challenge's TxID and the code allows once. No code is ever logged or
// put in an error.
package email

import (
	"context"
	"encoding/base64"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk"
)

// Name is the provider's name in config and URLs.
const Name = "email"

// Version is this provider's release.
const Version = "1.0.0"

// TLS modes of the SMTP connection.
const (
	TLSImplicit = "implicit" // TLS from the first byte (port 465)
	TLSStartTLS = "starttls" // plain, then STARTTLS before anything else (port 587)
	TLSNone     = "none"     // no TLS: only to a server on this machine
)

var schema = sdk.Schema{
	{Name: "smtp_host", Type: sdk.TypeString, Required: true, Help: "the SMTP server's host name or address"},
	{Name: "smtp_port", Type: sdk.TypeInt, Default: "587", Min: 1, Max: 65535, Help: "the SMTP server's port"},
	{Name: "smtp_tls", Type: sdk.TypeString, Default: TLSStartTLS, Enum: []string{TLSImplicit, TLSStartTLS, TLSNone},
		Help: "implicit (port 465), starttls (587), or none, which is refused unless smtp_host is a loopback address"},
	{Name: "smtp_ca_file", Type: sdk.TypeString, Help: "PEM file of the CA that signed the SMTP server's certificate; the system's roots when empty"},
	{Name: "smtp_username", Type: sdk.TypeString, Help: "user for SMTP AUTH PLAIN; no AUTH when empty"},
	{Name: "smtp_password", Type: sdk.TypeString, Secret: true, Help: "password for SMTP AUTH"},
	{Name: "from", Type: sdk.TypeString, Required: true, Help: "the sender address, e.g. \"ACME <no-reply@acme.example>\""},
	{Name: "issuer", Type: sdk.TypeString, Default: "twofactor", Help: "the service name shown in the mail"},
	{Name: "code_key", Type: sdk.TypeString, Required: true, Secret: true,
		Help: "base64 of at least 32 random bytes (openssl rand -base64 32): the key of the codes' hashes in the state"},
	{Name: "digits", Type: sdk.TypeInt, Default: "6", Min: 6, Max: 8, Help: "digits in a code",
		Loosens: &sdk.Loosens{Lower: true, Why: "a code with fewer digits is easier to guess"}},
	{Name: "code_ttl", Type: sdk.TypeDuration, Default: "5m", Help: "how long a mailed code is accepted",
		Loosens: &sdk.Loosens{Higher: true, Why: "a mailed code, and a copy of it in a mailbox, stays good for longer"}},
	{Name: "resend_after", Type: sdk.TypeDuration, Default: "30s", Help: "the least time between two codes sent to one user",
		Loosens: &sdk.Loosens{Lower: true, Why: "codes can be mailed more often, and each brings its own guesses"}},
}

// enrollInputs is what enrollment asks the user for.
var enrollInputs = sdk.Schema{
	{Name: "email", Type: sdk.TypeString, Required: true, Help: "the address the codes are sent to",
		Label: "Email address", Format: sdk.FormatEmail},
}

// config is the parsed settings.
type config struct {
	host, tlsMode, caFile string
	port                  int
	username, password    string
	from                  *mail.Address
	issuer                string
	key                   []byte
	digits                int
	ttl, resendAfter      time.Duration
}

// Provider is the email-code provider.
type Provider struct {
	log hclog.Logger

	mu  sync.RWMutex
	cfg *config
}

var (
	_ sdk.Provider   = (*Provider)(nil)
	_ sdk.Challenger = (*Provider)(nil)
)

// Option adjusts a new Provider.
type Option func(*Provider)

// WithLogger sends the provider's log lines to l; in a plugin binary pass
// sdk.Logger().
func WithLogger(l hclog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns an unconfigured provider.
func New(opts ...Option) *Provider {
	p := &Provider{log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info implements sdk.Provider.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name: Name, Version: Version,
		Description:  "one-time codes sent by email",
		Schema:       schema,
		Capabilities: capabilities,
		EnrollInputs: enrollInputs,
		// Info comes before Configure: the lengths the digits setting
		// allows (schema: 6 to 8).
		CodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8},
		Texts:     texts,
	}, nil
}

// texts are what the host's pages say about codes sent by email.
var texts = sdk.Texts{
	Name:   "email",
	Choice: "A code we send to your email address.",
	SignIn: "We'll send a code to your email. Enter it here to continue.",
	Enroll: "Protect your account with a code we email you at each sign-in. First, confirm where to send it.",
}

// capabilities: one factor, the default, answered with a mailed code
// after a challenge; enrollment mails a code to the "email" input, so the
// host holds each begin to its send limit.
var capabilities = sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true, Challenges: []sdk.Factor{""}, EnrollSendsTo: "email"}

// Configure implements sdk.Provider.
func (p *Provider) Configure(_ context.Context, s sdk.Settings) error {
	v, err := schema.Parse(s)
	if err != nil {
		return err
	}
	c := &config{
		host: v.String("smtp_host"), port: int(v.Int("smtp_port")), tlsMode: v.String("smtp_tls"), caFile: v.String("smtp_ca_file"),
		username: v.String("smtp_username"), password: v.String("smtp_password"),
		issuer: v.String("issuer"), digits: int(v.Int("digits")),
		ttl: v.Duration("code_ttl"), resendAfter: v.Duration("resend_after"),
	}
	if c.tlsMode == TLSNone && !isLoopback(c.host) {
		return sdk.FieldError(sdk.KindInvalidSettings, "smtp_tls",
			"none sends codes in clear text: only allowed when smtp_host is a loopback address; use starttls or implicit")
	}
	if c.password != "" && c.username == "" {
		return sdk.FieldError(sdk.KindInvalidSettings, "smtp_username", "is required with smtp_password")
	}
	if c.from, err = mail.ParseAddress(v.String("from")); err != nil {
		return sdk.FieldError(sdk.KindInvalidSettings, "from", "is not an email address")
	}
	if c.key, err = base64.StdEncoding.DecodeString(v.String("code_key")); err != nil || len(c.key) < 32 {
		return sdk.FieldError(sdk.KindInvalidSettings, "code_key", "must be base64 of at least 32 random bytes (openssl rand -base64 32)")
	}
	if c.ttl < 30*time.Second || c.ttl > 15*time.Minute {
		return sdk.FieldError(sdk.KindInvalidSettings, "code_ttl", "must be between 30s and 15m")
	}
	if c.resendAfter < time.Second || c.resendAfter > c.ttl {
		return sdk.FieldError(sdk.KindInvalidSettings, "resend_after", "must be between 1s and code_ttl")
	}
	if strings.ContainsAny(c.issuer, "\r\n") {
		return sdk.FieldError(sdk.KindInvalidSettings, "issuer", "must be one line")
	}
	if _, err := c.tlsConfig(); err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *Provider) config() (*config, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cfg == nil {
		return nil, sdk.Errorf(sdk.KindNotConfigured, "provider is not configured")
	}
	return p.cfg, nil
}

// Activate implements sdk.Provider: it opens an SMTP session (TLS and
// AUTH as configured) and quits. An unreachable server is reported as
// Unhealthy, not as an error, so the host keeps serving: sends then fail
// as unavailable until it is back.
func (p *Provider) Activate(ctx context.Context) (sdk.Activation, error) {
	c, err := p.config()
	if err != nil {
		return sdk.Activation{}, err
	}
	if err := c.probe(ctx); err != nil {
		return sdk.Activation{Health: sdk.Unhealthy, Diagnostics: []sdk.Diagnostic{{
			Code: "smtp_unreachable", Message: err.Error(), Severity: sdk.SeverityError,
			Fix: "check providers.email.settings.smtp_host, smtp_port, smtp_tls and the SMTP credentials",
		}}}, nil
	}
	return sdk.Activation{Health: sdk.Healthy}, nil
}
