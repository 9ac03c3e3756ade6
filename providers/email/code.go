package email

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

const (
	stateVersion = 1
	maxState     = 2048
)

// state is what the host stores for a user. A code is kept only as its
// keyed hash, bound to the user and the challenge it was sent for.
type state struct {
	V       int       `json:"v"`
	Address string    `json:"address"`
	Pending *pending  `json:"pending,omitempty"`
	Used    string    `json:"used,omitempty"` // the TxID of the last code accepted: a replay of it is told apart
	SentAt  time.Time `json:"sent_at,omitzero"`
}

// pending is a code mailed and not yet used.
type pending struct {
	TxID    string    `json:"tx"`
	Hash    string    `json:"h"` // base64 HMAC-SHA-256(code_key, user, tx, code)
	Expires time.Time `json:"exp"`
	Wrong   int       `json:"w,omitempty"` // wrong confirmation codes typed for it
}

// maxConfirmWrong is how many wrong codes an enrollment's code survives:
// then it is dropped and the user must send a new one. The host's attempt
// budget limits guesses across factors; this bounds the guesses at one
// mailed code, which the host keeps in the state this provider returns
// with each refusal.
const maxConfirmWrong = 3

// spend marks the pending code used. The resend throttle guards codes
// that went unanswered; once one is used, the next login may send at once.
func (s *state) spend() {
	s.Used, s.Pending, s.SentAt = s.Pending.TxID, nil, time.Time{}
}

func decodeState(b []byte) (state, error) {
	var s state
	if err := sdk.DecodeState(b, stateVersion, maxState, &s); err != nil {
		return state{}, err
	}
	if s.Address == "" {
		return state{}, sdk.Errorf(sdk.KindInvalidState, "state: no address")
	}
	return s, nil
}

func (s state) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of strings and times always marshals
	}
	return b
}

func (c *config) hash(user, txid, code string) string {
	m := hmac.New(sha256.New, c.key)
	// Length-prefixed, so no two (user, tx, code) triples hash alike.
	fmt.Fprintf(m, "%d:%s|%d:%s|%s", len(user), user, len(txid), txid, code)
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

func (c *config) newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(0).Exp(big.NewInt(10), big.NewInt(int64(c.digits)), nil))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", c.digits, n), nil
}

func newTxID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// mailCode makes a fresh code, mails it and returns the state that holds
// its hash. Nothing is returned if the mail did not go out.
func (c *config) mailCode(ctx context.Context, user string, s state, now time.Time, enrolling bool) (state, error) {
	code, err := c.newCode()
	if err != nil {
		return state{}, sdk.Errorf(sdk.KindInternal, "generate code: %v", err)
	}
	tx := newTxID()
	if err := c.send(ctx, s.Address, code, enrolling); err != nil {
		return state{}, err
	}
	s.Pending = &pending{TxID: tx, Hash: c.hash(user, tx, code), Expires: now.Add(c.ttl)}
	s.SentAt = now
	return s, nil
}

// normalize keeps the digits of what the user typed ("123 456", "123-456").
func normalize(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
}

// check compares a typed code with the pending one in constant time.
func (c *config) check(user string, p *pending, code string) bool {
	code = normalize(code)
	if len(code) != c.digits {
		return false
	}
	return hmac.Equal([]byte(c.hash(user, p.TxID, code)), []byte(p.Hash))
}

// Enroll implements sdk.Provider. Begin takes the address
// (Inputs["email"]) and mails a code; finish confirms with it.
func (p *Provider) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	c, err := p.config()
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	switch req.Step {
	case sdk.EnrollBegin:
		addr, err := parseAddress(req.Inputs["email"])
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		s, err := c.mailCode(ctx, req.User.ID, state{V: stateVersion, Address: addr}, req.Now, true)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		p.log.Info("enrollment code sent", "user", req.User.ID)
		return sdk.EnrollResponse{State: s.encode(), Display: sdk.Display{
			Instructions: "We sent a code to " + mask(addr) + ". Enter it to confirm the address.",
			CodeInput:    sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: c.digits, MaxLen: c.digits},
			// No SignInCodeInput: a sign-in code has the digits the
			// setting has when it is sent, which may change after this.
		}}, nil
	case sdk.EnrollFinish:
		s, err := decodeState(req.State)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		switch {
		case s.Pending == nil: // used, or dropped after too many wrong codes
			return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil
		case !req.Now.Before(s.Pending.Expires):
			return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil
		case !c.check(req.User.ID, s.Pending, req.Code):
			if s.Pending.Wrong++; s.Pending.Wrong >= maxConfirmWrong {
				s.Pending = nil
			}
			return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode, State: s.encode()}, nil
		}
		s.spend()
		return sdk.EnrollResponse{State: s.encode(), Done: true}, nil
	}
	return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInvalidRequest, "unknown enrollment step %q", req.Step)
}

// Challenge implements sdk.Challenger: it mails a fresh code, replacing
// any earlier one, unless one was sent less than resend_after ago (the
// host enforces the same limit first; this holds even if it did not).
func (p *Provider) Challenge(ctx context.Context, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	c, err := p.config()
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	if err := capabilities.CheckFactor(req.Factor); err != nil {
		return sdk.ChallengeResponse{}, err
	}
	s, err := decodeState(req.State)
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	if next := s.SentAt.Add(c.resendAfter); req.Now.Before(next) {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindInvalidRequest, "a code was sent less than %s ago; wait until %s",
			c.resendAfter, next.UTC().Format(time.RFC3339))
	}
	s, err = c.mailCode(ctx, req.User.ID, s, req.Now, false)
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	p.log.Info("sign-in code sent", "user", req.User.ID)
	return sdk.ChallengeResponse{
		State: s.encode(), TxID: s.Pending.TxID, Message: "We sent a code to " + mask(s.Address) + ".",
		ExpiresAt: s.Pending.Expires, ResendAfter: req.Now.Add(c.resendAfter),
	}, nil
}

// Verify implements sdk.Provider: the code mailed for req.TxID allows
// once, before it expires. Without a code it is a poll: still waiting.
func (p *Provider) Verify(_ context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if err := capabilities.CheckFactor(req.Factor); err != nil {
		return sdk.VerifyResponse{}, err
	}
	c, err := p.config()
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	s, err := decodeState(req.State)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	switch {
	case req.TxID == "":
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode, Message: "send a code first"}, nil
	case s.Used == req.TxID:
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonReplayed}, nil
	case s.Pending == nil || s.Pending.TxID != req.TxID:
		// A code superseded by a newer one: only the latest is accepted.
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired, Message: "a newer code was sent"}, nil
	case !req.Now.Before(s.Pending.Expires):
		s.Pending = nil
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired, State: s.encode()}, nil
	case req.Code == "":
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: req.TxID}, nil
	case !c.check(req.User.ID, s.Pending, req.Code):
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
	}
	s.spend()
	return sdk.VerifyResponse{Outcome: sdk.Allow, State: s.encode()}, nil
}
