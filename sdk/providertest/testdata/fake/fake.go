// Package fake is a small, correct provider for the conformance kit's own
// tests, and the deliberately broken variants of it that the kit must
// catch. Codes are HMAC-SHA256(secret, counter) reduced to six digits; the
// state records the last used counter.
package fake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

var schema = sdk.Schema{
	{Name: "issuer", Type: sdk.TypeString, Required: true, Help: "Name shown to the user."},
	{Name: "label", Type: sdk.TypeString, Default: "fake", Help: "A setting with a default."},
}

// Provider is the correct fake provider.
type Provider struct{ issuer atomic.Pointer[string] }

// New returns an unconfigured fake provider.
func New() *Provider { return &Provider{} }

// Info describes the provider.
func (p *Provider) Info(ctx context.Context) (sdk.Info, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Info{}, err
	}
	return sdk.Info{
		Name: "fake", Version: "1.0.0", Description: "test provider",
		Schema: schema, Capabilities: capabilities,
	}, nil
}

// capabilities: a typed code (the default factor), and a "push" that
// stays pending, to poll.
var capabilities = sdk.Capabilities{Code: true, Push: true, EnrollNeedsConfirmation: true, Factors: []sdk.Factor{"push"}}

// pushTxID is the transaction a push against state s starts.
func pushTxID(s state) string { return "push-" + strconv.FormatInt(s.Last, 10) }

// Configure checks the settings against the schema.
func (p *Provider) Configure(ctx context.Context, s sdk.Settings) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := schema.Parse(s)
	if err != nil {
		return err
	}
	issuer := v.String("issuer")
	p.issuer.Store(&issuer)
	return nil
}

// Activate reports healthy once configured.
func (p *Provider) Activate(ctx context.Context) (sdk.Activation, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Activation{}, err
	}
	if p.issuer.Load() == nil {
		return sdk.Activation{}, sdk.Errorf(sdk.KindNotConfigured, "not configured")
	}
	return sdk.Activation{Health: sdk.Healthy}, nil
}

type state struct {
	Secret []byte `json:"secret"`
	Last   int64  `json:"last"` // last used counter; -1 for none
}

func parse(b []byte) (state, error) {
	var s state
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil || len(s.Secret) != 16 || s.Last < -1 {
		return state{}, sdk.Errorf(sdk.KindInvalidState, "not a fake state")
	}
	return s, nil
}

func (s state) marshal() []byte {
	b, _ := json.Marshal(s)
	return b
}

func code(secret []byte, counter int64) string {
	m := hmac.New(sha256.New, secret)
	binary.Write(m, binary.BigEndian, counter)
	return fmt.Sprintf("%06d", binary.BigEndian.Uint32(m.Sum(nil))%1000000)
}

// Code is the kit's Options.Code: the next code for a state.
func Code(b []byte, _ time.Time) (string, error) {
	s, err := parse(b)
	if err != nil {
		return "", err
	}
	return code(s.Secret, s.Last+1), nil
}

// Enroll makes a secret (begin) and checks the first code (finish).
func (p *Provider) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if err := ctx.Err(); err != nil {
		return sdk.EnrollResponse{}, err
	}
	if req.Step == sdk.EnrollBegin {
		s := state{Secret: make([]byte, 16), Last: -1}
		rand.Read(s.Secret)
		return sdk.EnrollResponse{State: s.marshal()}, nil
	}
	s, err := parse(req.State)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	if subtle.ConstantTimeCompare([]byte(req.Code), []byte(code(s.Secret, s.Last+1))) != 1 {
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, nil
	}
	s.Last++
	return sdk.EnrollResponse{State: s.marshal(), Done: true}, nil
}

// Verify accepts the next code once.
func (p *Provider) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if err := ctx.Err(); err != nil {
		return sdk.VerifyResponse{}, err
	}
	if err := capabilities.CheckFactor(req.Factor); err != nil {
		return sdk.VerifyResponse{}, err
	}
	s, err := parse(req.State)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	// The host polls a push with its TxID and no factor.
	if req.Factor == "push" || strings.HasPrefix(req.TxID, "push-") {
		return push(s, req)
	}
	switch c := []byte(req.Code); {
	case subtle.ConstantTimeCompare(c, []byte(code(s.Secret, s.Last+1))) == 1:
		s.Last++
		return sdk.VerifyResponse{Outcome: sdk.Allow, State: s.marshal()}, nil
	case s.Last >= 0 && subtle.ConstantTimeCompare(c, []byte(code(s.Secret, s.Last))) == 1:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonReplayed}, nil
	}
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
}

// push starts a push that is never answered, or polls one.
func push(s state, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	switch {
	case req.Code != "":
		return sdk.VerifyResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "code", "a push takes no code")
	case req.TxID == "", req.TxID == pushTxID(s):
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: pushTxID(s)}, nil
	}
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired}, nil
}
