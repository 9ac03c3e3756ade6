// Package webauthn is the first-party provider of security keys and
// passkeys (WebAuthn), on github.com/go-webauthn/webauthn.
//
// One enrollment holds a user's credentials (up to maxCredentials), each
// with a label (Capabilities.MultipleCredentials): begin and add return
// the credential-creation options for the browser in Display.Public, and
// finish takes the browser's attestation response (as the code) and keeps
// the new credential in the state. At login Challenge returns the
// credential-request options in Public, bound to a fresh random challenge
// kept in the state with its expiry; Verify takes the browser's assertion
// response (as the code) and allows once per challenge. Nothing in the
// state is secret (public keys and counters), but the host seals it like
// every other.
package webauthn

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"github.com/hashicorp/go-hclog"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/twofactor/twofactor/sdk"
)

// Name is the provider's name in config and URLs.
const Name = "webauthn"

// Version is this provider's release.
const Version = "1.0.0"

// User verification settings, as WebAuthn names them.
const (
	UVDiscouraged = "discouraged"
	UVPreferred   = "preferred"
	UVRequired    = "required"
)

var schema = sdk.Schema{
	{Name: "rp_id", Type: sdk.TypeString, Required: true,
		Help: "the relying party id: the site's domain (example.com), never an IP address; credentials are bound to it"},
	{Name: "rp_display_name", Type: sdk.TypeString, Default: "twofactor", Help: "the site's name the browser shows"},
	{Name: "origins", Type: sdk.TypeString, Required: true,
		Help: "comma-separated origins the login pages are served from (https://login.example.com); each host is rp_id or a subdomain of it"},
	{Name: "user_verification", Type: sdk.TypeString, Default: UVPreferred, Enum: []string{UVDiscouraged, UVPreferred, UVRequired},
		Help:    "whether the authenticator must check a PIN or biometric: required refuses a key that did not",
		Loosens: &sdk.Loosens{Values: []string{UVPreferred, UVDiscouraged}, Why: "a key that did not check its holder's PIN or biometric is accepted"}},
	{Name: "attestation", Type: sdk.TypeString, Default: string(protocol.PreferNoAttestation),
		Enum: []string{string(protocol.PreferNoAttestation), string(protocol.PreferIndirectAttestation), string(protocol.PreferDirectAttestation)},
		Help: "attestation conveyance asked of the authenticator at enrollment"},
	{Name: "resident_keys", Type: sdk.TypeBool, Default: "true",
		Help: "let authenticators keep a discoverable credential (a passkey); false asks for server-side credentials only"},
	{Name: "timeout", Type: sdk.TypeDuration, Default: "2m", Help: "how long the browser waits, and how long a challenge is accepted"},
}

// capabilities: the default factor only, after a challenge.
var capabilities = sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true,
	Challenges: []sdk.Factor{""}, MultipleCredentials: true, SilentChallenges: true}

// enrollInputs is what enrollment asks the user for.
var enrollInputs = sdk.Schema{
	{Name: "label", Type: sdk.TypeString, Help: "a name for the key (\"YubiKey on my keyring\"); \"Security key N\" when empty"},
}

// config is the parsed settings and the library built from them.
type config struct {
	rpID        string
	origins     []string
	uv          protocol.UserVerificationRequirement
	attestation protocol.ConveyancePreference
	resident    bool
	timeout     time.Duration
	wa          *gowebauthn.WebAuthn
}

// Provider is the WebAuthn provider.
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
		Description:  "security keys and passkeys (WebAuthn)",
		Schema:       schema,
		Capabilities: capabilities,
		EnrollInputs: enrollInputs,
		Texts:        sdk.Texts{Name: "security key or passkey", Choice: "Touch your security key, or use a passkey."},
	}, nil
}

// Configure implements sdk.Provider.
func (p *Provider) Configure(_ context.Context, s sdk.Settings) error {
	v, err := schema.Parse(s)
	if err != nil {
		return err
	}
	c := &config{
		rpID: strings.ToLower(v.String("rp_id")), uv: protocol.UserVerificationRequirement(v.String("user_verification")),
		attestation: protocol.ConveyancePreference(v.String("attestation")), resident: v.Bool("resident_keys"),
		timeout: v.Duration("timeout"),
	}
	if err := checkRPID(c.rpID); err != nil {
		return err
	}
	if c.origins, err = parseOrigins(v.String("origins"), c.rpID); err != nil {
		return err
	}
	if c.timeout < 10*time.Second || c.timeout > 10*time.Minute {
		return sdk.FieldError(sdk.KindInvalidSettings, "timeout", "must be between 10s and 10m")
	}
	name := v.String("rp_display_name")
	if strings.ContainsAny(name, "\r\n") || name == "" {
		return sdk.FieldError(sdk.KindInvalidSettings, "rp_display_name", "must be one non-empty line")
	}
	resident := protocol.ResidentKeyRequirementDiscouraged
	if c.resident {
		resident = protocol.ResidentKeyRequirementPreferred
	}
	to := gowebauthn.TimeoutConfig{Timeout: c.timeout, TimeoutUVD: c.timeout}
	c.wa, err = gowebauthn.New(&gowebauthn.Config{
		RPID: c.rpID, RPDisplayName: name, RPOrigins: c.origins,
		AttestationPreference:  c.attestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{UserVerification: c.uv, ResidentKey: resident},
		Timeouts:               gowebauthn.TimeoutsConfig{Login: to, Registration: to},
	})
	if err != nil {
		return sdk.FieldError(sdk.KindInvalidSettings, "rp_id", "refused by the WebAuthn library: %v", err)
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

// checkRPID accepts a registrable-looking domain name: browsers refuse an
// IP address (and a scheme, port or path) as a relying party id.
func checkRPID(id string) error {
	bad := func(why string) error { return sdk.FieldError(sdk.KindInvalidSettings, "rp_id", "%s", why) }
	switch {
	case id == "":
		return bad("is empty")
	case net.ParseIP(strings.Trim(id, "[]")) != nil:
		return bad("is an IP address; browsers accept only a domain name (serve the pages on a name, even localhost)")
	case strings.ContainsAny(id, ":/?#@ "):
		return bad("must be a bare domain name (example.com), without scheme, port or path")
	case len(id) > 253 || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") || strings.Contains(id, ".."):
		return bad("is not a domain name")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return bad("is not a domain name (use the punycode form of an international name)")
		}
	}
	return nil
}

// parseOrigins reads the comma-separated origins: each an http(s) URL with
// no path whose host is rpID or a subdomain of it. http is only for
// localhost, as browsers only offer WebAuthn on http there.
func parseOrigins(list, rpID string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		bad := func(format string, args ...any) error {
			return sdk.FieldError(sdk.KindInvalidSettings, "origins", "%q: %s", o, fmt.Sprintf(format, args...))
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, bad("is not an http(s) origin such as https://login.example.com")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, bad("an origin has no path, query or user")
		}
		host := strings.ToLower(u.Hostname())
		if host != rpID && !strings.HasSuffix(host, "."+rpID) {
			return nil, bad("its host is neither rp_id %q nor a subdomain of it", rpID)
		}
		if u.Scheme == "http" && host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			return nil, bad("http is only for localhost; browsers offer WebAuthn on https elsewhere")
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	if len(out) == 0 {
		return nil, sdk.FieldError(sdk.KindInvalidSettings, "origins", "lists no origin")
	}
	return out, nil
}

func (p *Provider) config() (*config, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cfg == nil {
		return nil, sdk.Errorf(sdk.KindNotConfigured, "provider is not configured")
	}
	return p.cfg, nil
}

// Activate implements sdk.Provider: there is no backend, so a configured
// provider is healthy. An http origin is worth a word to the admin.
func (p *Provider) Activate(context.Context) (sdk.Activation, error) {
	c, err := p.config()
	if err != nil {
		return sdk.Activation{}, err
	}
	a := sdk.Activation{Health: sdk.Healthy}
	for _, o := range c.origins {
		if strings.HasPrefix(o, "http://") {
			a.Diagnostics = append(a.Diagnostics, sdk.Diagnostic{Code: "http_origin", Value: o, Severity: sdk.SeverityWarning,
				Message: "an http origin is only served by browsers on localhost: fine for development, not for users",
				Fix:     "list the https origins of the login pages in providers.webauthn.settings.origins"})
		}
	}
	return a, nil
}
