package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/sdk"
)

// Version is the provider's own release version, reported in Info.
const Version = "1.0.0"

// ReasonResyncRequired denies a code that matches a counter beyond the
// look-ahead window but within the resynchronisation window: the token was
// pressed many times without logging in. The user must enter the token's
// next code to prove the jump was theirs; that code is then allowed. The
// SDK's vocabulary has the word, so the host knows it counts as a failed
// attempt; a provider with a case the vocabulary lacks would return a
// custom reason ("x-..."), never a word of its own.
const ReasonResyncRequired = sdk.ReasonResyncRequired

// Setting names.
const (
	settingIssuer       = "issuer"
	settingDigits       = "digits"
	settingLookAhead    = "look_ahead"
	settingResyncWindow = "resync_window"
)

var schema = sdk.Schema{
	{
		Name:     settingIssuer,
		Type:     sdk.TypeString,
		Required: true,
		Help:     "Name shown in an authenticator app above the account, such as your company. Must not contain ':'.",
	},
	{
		Name:    settingDigits,
		Type:    sdk.TypeInt,
		Default: "6",
		Enum:    []string{"6", "8"},
		Help:    "Digits per code for new enrollments, 6 or 8; it must match what the tokens show.",
		Loosens: &sdk.Loosens{Lower: true, Why: "codes with fewer digits are easier to guess"},
	},
	{
		Name:    settingLookAhead,
		Type:    sdk.TypeInt,
		Default: "10",
		Min:     1,
		Max:     100,
		Help: "How many counters past the last accepted one a code may be, for button presses " +
			"that never reached a login (1 to 100; RFC 4226 section 7.4).",
		Loosens: &sdk.Loosens{Higher: true, Why: "more codes are accepted at once"},
	},
	{
		Name:    settingResyncWindow,
		Type:    sdk.TypeInt,
		Default: "100",
		Min:     2,
		Max:     1000,
		Help: "How far past the last accepted counter a code may be for the token to be resynchronised " +
			"with two consecutive codes (2 to 1000; larger than look_ahead).",
		Loosens: &sdk.Loosens{Higher: true, Why: "a pair of codes from further ahead resynchronises the token"},
	},
}

// config is one parsed set of settings, swapped whole by Configure.
type config struct {
	issuer       string
	digits       int
	lookAhead    int64
	resyncWindow int64
}

// Provider is the HOTP provider. It keeps no per-user state: each user's
// secret and counter travel in the state the host stores.
type Provider struct {
	cfg atomic.Pointer[config]
	log hclog.Logger
}

var _ sdk.Provider = (*Provider)(nil)

// Option adjusts a new Provider.
type Option func(*Provider)

// WithLogger sends the provider's log lines to l; in the plugin binary,
// sdk.Logger(), whose lines the host re-emits under the provider's name.
func WithLogger(l hclog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns an unconfigured provider.
func New(opts ...Option) *Provider {
	p := &Provider{log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Info describes the provider; it works before Configure.
func (p *Provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:         "hotp",
		Version:      Version,
		Description:  "Counter-based one-time passwords (RFC 4226) from hardware tokens.",
		Schema:       schema,
		Capabilities: capabilities,
		// Info comes before Configure: the lengths every allowed digits
		// setting gives (6 or 8).
		CodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8},
	}, nil
}

// capabilities: a typed code, the default factor only.
var capabilities = sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true}

// Configure validates the settings and replaces the current ones; on error
// the previous settings stay in force.
func (p *Provider) Configure(_ context.Context, settings sdk.Settings) error {
	v, err := schema.Parse(settings)
	if err != nil {
		return err // an *sdk.Error of KindInvalidSettings naming the field
	}
	c := &config{
		issuer:       v.String(settingIssuer),
		digits:       int(v.Int(settingDigits)),
		lookAhead:    v.Int(settingLookAhead),
		resyncWindow: v.Int(settingResyncWindow),
	}
	if err := checkLabelPart(c.issuer); err != nil {
		return sdk.FieldError(sdk.KindInvalidSettings, settingIssuer, "%v", err)
	}
	if c.resyncWindow <= c.lookAhead {
		return sdk.FieldError(sdk.KindInvalidSettings, settingResyncWindow,
			"%d must be larger than %s (%d)", c.resyncWindow, settingLookAhead, c.lookAhead)
	}
	p.cfg.Store(c)
	p.log.Info("configured", "issuer", c.issuer, "digits", c.digits,
		"look_ahead", c.lookAhead, "resync_window", c.resyncWindow)
	return nil
}

// checkLabelPart checks an issuer or account name for the otpauth label
// "issuer:account".
func checkLabelPart(s string) error {
	switch {
	case strings.Contains(s, ":"):
		return errors.New("must not contain ':'")
	case len(s) > 200:
		return errors.New("is longer than 200 bytes")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("must not contain control characters")
	}
	return nil
}

func (p *Provider) current() (*config, error) {
	c := p.cfg.Load()
	if c == nil {
		return nil, sdk.Errorf(sdk.KindNotConfigured, "hotp provider is not configured")
	}
	return c, nil
}

// Activate reports health. HOTP has no backend: it is healthy once
// configured.
func (p *Provider) Activate(context.Context) (sdk.Activation, error) {
	if _, err := p.current(); err != nil {
		return sdk.Activation{}, err
	}
	return sdk.Activation{Health: sdk.Healthy}, nil
}

// Enroll runs one enrollment step: begin makes a secret and shows it,
// finish checks the token's first code.
func (p *Provider) Enroll(_ context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	c, err := p.current()
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	switch req.Step {
	case sdk.EnrollBegin:
		return c.enrollBegin(req.User)
	case sdk.EnrollFinish:
		return c.enrollFinish(req.State, req.Code)
	}
	return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "step", "unknown enrollment step %q", req.Step)
}

// Verify checks a code against the enrollment in req.State. A wrong,
// malformed or replayed code is a Deny, not an error; only an unusable
// state or a missing configuration is an error.
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
		return sdk.VerifyResponse{}, err // KindInvalidState: the host denies with invalid_state
	}
	resp := c.verify(e, req.Code)
	if resp.Reason == ReasonResyncRequired || resp.Details["resynchronised"] == "true" {
		p.log.Info("token resynchronisation", "user", req.User.ID, "outcome", resp.Outcome, "counter", e.counter)
	}
	return resp, nil
}

// verify decides on one code and returns the state to store: nil when the
// state did not change. It never stops early on a match, so the time taken
// does not tell which counter matched.
func (c *config) verify(e *enrollment, typed string) sdk.VerifyResponse {
	code, ok := normalizeCode(typed, e.digits)
	// A pending resynchronisation is good for exactly the next attempt.
	pending, hadPending := e.pending, e.hasPending
	e.hasPending = false
	changed := func() []byte {
		if hadPending {
			return e.marshal()
		}
		return nil
	}
	deny := func(reason sdk.Reason, msg string) sdk.VerifyResponse {
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: reason, Message: msg, State: changed()}
	}
	if !ok {
		return deny(sdk.ReasonInvalidCode, "code is malformed")
	}
	if hadPending {
		if _, ok := e.match(code, pending+1, pending+1); ok {
			skipped := pending - e.counter
			e.counter = pending + 1
			return sdk.VerifyResponse{
				Outcome: sdk.Allow, Message: "token resynchronised", State: e.marshal(),
				Details: map[string]string{"resynchronised": "true", "counters_skipped": fmt.Sprint(skipped)},
			}
		}
	}
	if m, ok := e.match(code, e.counter+1, e.counter+c.lookAhead); ok {
		skipped := m - e.counter - 1
		e.counter = m
		return sdk.VerifyResponse{
			Outcome: sdk.Allow, Message: "code accepted", State: e.marshal(),
			Details: map[string]string{"counters_skipped": fmt.Sprint(skipped)},
		}
	}
	if _, ok := e.match(code, e.counter-c.lookAhead+1, e.counter); ok {
		return deny(sdk.ReasonReplayed, "code was already used")
	}
	if m, ok := e.match(code, e.counter+c.lookAhead+1, e.counter+c.resyncWindow); ok {
		e.pending, e.hasPending = m, true
		return sdk.VerifyResponse{
			Outcome: sdk.Deny, Reason: ReasonResyncRequired, State: e.marshal(),
			Message: "the token is ahead of the server; enter its next code to resynchronise",
		}
	}
	return deny(sdk.ReasonInvalidCode, "code does not match")
}
