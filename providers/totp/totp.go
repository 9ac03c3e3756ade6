package totp

import (
	"context"
	"errors"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/sdk"
)

// Version is the provider's own release version.
const Version = "1.0.0"

// Setting names.
const (
	settingIssuer      = "issuer"
	settingAlgorithm   = "algorithm"
	settingDigits      = "digits"
	settingPeriod      = "period"
	settingSkew        = "skew"
	settingSecretBytes = "secret_bytes"
)

// Bounds shared by the settings schema and the state parser, so that a state
// this provider wrote is always a state it accepts.
const (
	minPeriod      = 15
	maxPeriod      = 300
	minSecretBytes = 16 // RFC 4226 R6: at least 128 bits
	maxSecretBytes = 64 // a SHA-512 block; longer keys are hashed down anyway
	maxSkew        = 2
	// maxIssuerLen and maxAccountLen keep the otpauth URL small enough for
	// a 256×256 QR code even when every byte is percent-encoded.
	maxIssuerLen  = 100
	maxAccountLen = 256
)

// algorithms maps the accepted algorithm names to pquerna/otp values.
// pquerna/otp also accepts MD5, which is not in RFC 6238; it is left out.
var algorithms = map[string]otp.Algorithm{
	"SHA1":   otp.AlgorithmSHA1,
	"SHA256": otp.AlgorithmSHA256,
	"SHA512": otp.AlgorithmSHA512,
}

var schema = sdk.Schema{
	{
		Name:     settingIssuer,
		Type:     sdk.TypeString,
		Required: true,
		Help: "Name shown in the authenticator app above the account, such as your " +
			"company or product. Must not contain ':' (it separates issuer and account in the otpauth label).",
	},
	{
		Name:    settingAlgorithm,
		Type:    sdk.TypeString,
		Default: "SHA1",
		Enum:    []string{"SHA1", "SHA256", "SHA512"},
		Help: "HMAC algorithm for new enrollments. Keep SHA1: Google and Microsoft " +
			"Authenticator ignore any other value and would show codes that never match.",
	},
	{
		Name:    settingDigits,
		Type:    sdk.TypeInt,
		Default: "6",
		Enum:    []string{"6", "8"},
		Help:    "Number of digits in a code for new enrollments, 6 or 8. Keep 6 for Google Authenticator on Android.",
		Loosens: &sdk.Loosens{Lower: true, Why: "new enrollments get codes with fewer digits, easier to guess"},
	},
	{
		Name:    settingPeriod,
		Type:    sdk.TypeInt,
		Default: "30",
		Min:     minPeriod,
		Max:     maxPeriod,
		Help:    "Seconds each code is valid for new enrollments (15 to 300). Keep 30: most apps ignore other values.",
		Loosens: &sdk.Loosens{Higher: true, Why: "each code of new enrollments stays good for longer"},
	},
	{
		Name:    settingSkew,
		Type:    sdk.TypeInt,
		Default: "1",
		Min:     0,
		Max:     maxSkew,
		Help: "How many periods before and after the current one are also accepted, to " +
			"allow for clock drift and typing time (0 to 2). 1 accepts a code for up to three periods. " +
			"Applies to all enrollments.",
		Loosens: &sdk.Loosens{Higher: true, Why: "more codes are accepted at once, for every enrollment"},
	},
	{
		Name:    settingSecretBytes,
		Type:    sdk.TypeInt,
		Default: "20",
		Min:     minSecretBytes,
		Max:     maxSecretBytes,
		Help:    "Length in bytes of the random secret of new enrollments (16 to 64; 20 is the RFC 4226 recommendation).",
		Loosens: &sdk.Loosens{Lower: true, Why: "new enrollments get shorter secrets"},
	},
}

// config is one parsed set of settings. It is never modified after
// Configure publishes it, so readers need no lock.
type config struct {
	issuer      string
	algName     string
	algorithm   otp.Algorithm
	digits      int
	period      int64
	skew        int64
	secretBytes int
}

// Provider is the TOTP provider. The zero value is not configured; use New.
type Provider struct {
	// cfg is swapped whole by Configure so a concurrent Verify sees either
	// the old or the new settings, never a mix.
	cfg atomic.Pointer[config]
	log hclog.Logger
}

var _ sdk.Provider = (*Provider)(nil)

// Option adjusts a new Provider.
type Option func(*Provider)

// WithLogger sends the provider's log lines to l; in a plugin binary pass
// sdk.Logger(), whose lines the host re-emits under the provider's name.
func WithLogger(l hclog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns an unconfigured TOTP provider. It logs nothing unless given
// WithLogger.
func New(opts ...Option) *Provider {
	p := &Provider{log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info describes the provider. It works before Configure.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:         "totp",
		Version:      Version,
		Description:  "Time-based one-time passwords (RFC 6238) from an authenticator app.",
		Schema:       schema.Clone(),
		Capabilities: capabilities,
		CodeInput:    signInCode,
		Texts:        texts,
	}, nil
}

// texts are what the host's pages say about TOTP: an authenticator app's
// codes, and the advice that goes with them.
var texts = sdk.Texts{
	Name:   "authenticator app",
	Choice: "A code from an authenticator app on your phone.",
	SignIn: "Enter the code from your authenticator app.",
	Enroll: "Protect your account with a code from an app on your phone, asked for at each sign-in.",
	Prepare: "Install an authenticator app on your phone, if you don't have one: Google Authenticator, " +
		"Microsoft Authenticator, 1Password, Bitwarden or any app that supports time-based codes.",
	SetupTitle: "Scan the QR code",
	Setup:      "Open your authenticator app, add an account and scan this code. Then enter the code the app shows.",
	ScanAlt:    "QR code to scan with your authenticator app",
	WrongCode:  "That code didn't match. Enter the current code from your app; if it still fails, check that your phone's time is set automatically.",
}

// signInCode: Info comes before Configure, so the field takes the
// lengths every allowed digits setting gives (6 or 8).
var signInCode = sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8}

// capabilities: a typed code, the default factor only.
var capabilities = sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true}

// Configure validates settings and replaces the current ones. On error the
// previous settings stay in force.
func (p *Provider) Configure(_ context.Context, settings sdk.Settings) error {
	v, err := schema.Parse(settings)
	if err != nil {
		return err
	}
	c := &config{
		issuer:      v.String(settingIssuer),
		algName:     v.String(settingAlgorithm),
		digits:      int(v.Int(settingDigits)),
		period:      v.Int(settingPeriod),
		skew:        v.Int(settingSkew),
		secretBytes: int(v.Int(settingSecretBytes)),
	}
	if err := checkLabelPart(c.issuer, maxIssuerLen); err != nil {
		return sdk.FieldError(sdk.KindInvalidSettings, settingIssuer, "%s", err)
	}
	alg, ok := algorithms[c.algName]
	if !ok { // unreachable while the schema enum and the map agree
		return sdk.FieldError(sdk.KindInvalidSettings, settingAlgorithm, "unsupported algorithm")
	}
	c.algorithm = alg
	if c.digits != 6 && c.digits != 8 { // the schema enum already says so
		return sdk.FieldError(sdk.KindInvalidSettings, settingDigits, "must be 6 or 8")
	}
	p.cfg.Store(c)
	p.log.Info("configured", "issuer", c.issuer, "algorithm", c.algName, "digits", c.digits,
		"period", c.period, "skew", c.skew, "secret_bytes", c.secretBytes)
	return nil
}

// checkLabelPart checks an issuer or account name for the otpauth label
// "issuer:account". A ':' in either part makes the split ambiguous, so an
// app could show a different issuer or account than intended (the Key URI
// format forbids it); control characters have no business in a name shown
// to a user.
func checkLabelPart(s string, maxLen int) error {
	if strings.Contains(s, ":") {
		return errors.New("must not contain ':'")
	}
	if len(s) > maxLen {
		return fmt.Errorf("is longer than %d bytes", maxLen)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errors.New("must not contain control characters")
	}
	return nil
}

func (p *Provider) current() (*config, error) {
	c := p.cfg.Load()
	if c == nil {
		return nil, sdk.Errorf(sdk.KindNotConfigured, "totp provider is not configured")
	}
	return c, nil
}

// Activate reports health. TOTP has no backend, so it is healthy once
// configured; its authenticator_compat diagnostic says whether the
// settings are ones that popular apps ignore (a warning, with the fix).
func (p *Provider) Activate(context.Context) (sdk.Activation, error) {
	c, err := p.current()
	if err != nil {
		return sdk.Activation{}, err
	}
	return sdk.Activation{Health: sdk.Healthy, Diagnostics: []sdk.Diagnostic{c.compat()}}, nil
}

// compat is the authenticator_compat diagnostic: Google Authenticator and
// Microsoft Authenticator ignore algorithm, digits and period, so users of
// other settings scan the QR code and get codes that never match.
func (c *config) compat() sdk.Diagnostic {
	var odd, fix []string
	if c.algorithm != otp.AlgorithmSHA1 {
		odd, fix = append(odd, "algorithm "+c.algName), append(fix, "algorithm: SHA1")
	}
	if c.digits != 6 {
		odd, fix = append(odd, fmt.Sprintf("digits %d", c.digits)), append(fix, "digits: 6")
	}
	if c.period != 30 {
		odd, fix = append(odd, fmt.Sprintf("period %d", c.period)), append(fix, "period: 30")
	}
	d := sdk.Diagnostic{Code: "authenticator_compat", Severity: sdk.SeverityInfo,
		Value:   fmt.Sprintf("algorithm=%s digits=%d period=%d", c.algName, c.digits, c.period),
		Message: "SHA1, 6 digits, 30 s: what every authenticator app supports"}
	if len(odd) > 0 {
		d.Severity = sdk.SeverityWarning
		d.Message = strings.Join(odd, ", ") + ": Google Authenticator and Microsoft Authenticator ignore these and " +
			"always use SHA1, 6 digits and 30 s, so their users get codes that never match"
		d.Fix = "set " + strings.Join(fix, ", ") + " in this provider's settings (existing enrollments keep the " +
			"settings they were made with)"
	}
	return d
}

// Enroll runs one enrollment step: begin creates a secret and shows it,
// finish confirms it with a code from the user's app.
func (p *Provider) Enroll(_ context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	c, err := p.current()
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	switch req.Step {
	case sdk.EnrollBegin:
		return c.enrollBegin(req)
	case sdk.EnrollFinish:
		return c.enrollFinish(req)
	default:
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "step", "unknown enrollment step %q", req.Step)
	}
}

func (c *config) enrollFinish(req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	e, err := parseState(req.State)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	// No clock hint here: a finish step answers only done or a reason.
	m, err := e.check(req.Code, now(req.Now), c.skew, 0)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	switch {
	case m.fresh:
		e.lastStep = m.step
		return sdk.EnrollResponse{State: e.marshal(), Done: true}, nil
	case m.matched:
		// Only possible for a state that was already confirmed, or for
		// step 0, which is reserved as "no step yet".
		return sdk.EnrollResponse{Reason: sdk.ReasonReplayed}, nil
	default:
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, nil
	}
}

// Verify checks a typed code against the enrollment in req.State. A wrong,
// malformed or reused code is a Deny, not an error; only an unusable state
// or missing configuration is an error.
func (p *Provider) Verify(_ context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if err := capabilities.CheckFactor(req.Factor); err != nil {
		return sdk.VerifyResponse{}, err
	}
	c, err := p.current()
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	e, err := parseState(req.State)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	// The clock hint only on the first failure of a run: a user whose
	// device's clock is off hears it at once, while a guessing run pays
	// for (and learns from) the wider scan once, not with every guess,
	// and a wrong code costs no more than a right one (issue 16).
	hint := int64(0)
	if req.Failures == 0 {
		hint = hintSteps
	}
	m, err := e.check(req.Code, now(req.Now), c.skew, hint)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	switch {
	case m.fresh:
		e.lastStep = m.step
		return sdk.VerifyResponse{
			Outcome: sdk.Allow,
			Message: "code accepted",
			State:   e.marshal(),
			Details: map[string]string{"step_offset": fmt.Sprint(m.offset)},
		}, nil
	case m.matched, m.outside && !m.outsideFresh:
		// A step outside the window at or before the last accepted one
		// was itself accepted once: a reused code, not a clock to fix.
		return sdk.VerifyResponse{
			Outcome: sdk.Deny,
			Reason:  sdk.ReasonReplayed,
			Message: "code was already used",
		}, nil
	case m.outside && m.outsideOffset > 0:
		// A code for a future step will become valid: telling the sender
		// so would turn a lucky guess into a login a few minutes later.
		// The caller hears invalid_code; the offset goes to the audit log
		// only, where doctor reports it.
		return sdk.VerifyResponse{
			Outcome: sdk.Deny,
			Reason:  sdk.ReasonInvalidCode,
			Message: "code does not match",
			Details: map[string]string{"suspected_step_offset": fmt.Sprint(m.outsideOffset)},
		}, nil
	case m.outside:
		return sdk.VerifyResponse{
			Outcome: sdk.Deny,
			Reason:  sdk.ReasonClockSkewSuspected,
			Message: skewMessage(m.outsideOffset),
			// step_seconds turns the offset into time for the host's
			// doctor, which knows no provider's settings.
			Details: map[string]string{"step_offset": fmt.Sprint(m.outsideOffset), "step_seconds": fmt.Sprint(e.period)},
		}, nil
	default:
		return sdk.VerifyResponse{
			Outcome: sdk.Deny,
			Reason:  sdk.ReasonInvalidCode,
			Message: "code does not match",
		}, nil
	}
}

// skewMessage explains a code that matches offset steps away from now.
func skewMessage(offset int64) string {
	dir := "future"
	if offset < 0 {
		dir, offset = "past", -offset
	}
	unit := "steps"
	if offset == 1 {
		unit = "step"
	}
	return fmt.Sprintf("code matches %d %s in the %s: check the device's clock", offset, unit, dir)
}

// now returns the host's time for a request, or this machine's clock when
// the host sent none.
func now(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
