package webauthn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/twofactor/twofactor/sdk"
)

// Challenge implements sdk.Challenger: fresh credential-request options
// for the user's keys, whose challenge replaces any earlier one in the
// state. Nothing is sent anywhere, so a new one may be had at once.
func (p *Provider) Challenge(_ context.Context, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
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
	if len(s.Creds) == 0 {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindInvalidState, "state: no credential to log in with")
	}
	assertion, session, err := c.wa.BeginLogin(user{name: req.User.Label(), s: &s})
	if err != nil {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindInternal, "begin login: %v", err)
	}
	public, err := json.Marshal(assertion)
	if err != nil {
		return sdk.ChallengeResponse{}, sdk.Errorf(sdk.KindInternal, "request options: %v", err)
	}
	session.Expires = time.Time{} // ours, on the host's clock
	s.Login = &ceremony{TxID: newTxID(), Session: *session, Expires: req.Now.Add(c.timeout)}
	return sdk.ChallengeResponse{
		State: s.encode(), TxID: s.Login.TxID, Message: "Use your security key or passkey.",
		ExpiresAt: s.Login.Expires, ResendAfter: req.Now, Public: string(public),
	}, nil
}

// Verify implements sdk.Provider: the browser's assertion response (the
// code) for the challenge req.TxID names. A challenge is answered once,
// right or wrong: any assertion ends it (what is not an assertion at all
// does not). Without an answer it is a poll.
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
	deny := func(r sdk.Reason, msg string) (sdk.VerifyResponse, error) {
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: r, Message: msg}, nil
	}
	switch {
	case req.TxID == "":
		return deny(sdk.ReasonInvalidCode, "start a verification first: its options carry the challenge")
	case s.Used == req.TxID:
		return deny(sdk.ReasonReplayed, "that challenge was already answered")
	case s.Login == nil || s.Login.TxID != req.TxID:
		return deny(sdk.ReasonExpired, "a newer challenge was issued")
	case !req.Now.Before(s.Login.Expires):
		s.Login = nil
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired, State: s.encode()}, nil
	case req.Code == "":
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: req.TxID}, nil
	}
	if len(req.Code) > maxAnswer {
		return deny(sdk.ReasonInvalidCode, "the answer is larger than any browser sends")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(req.Code))
	if err != nil {
		// Not an assertion at all (a typed code, a truncated post): the
		// challenge stays for the browser's real answer.
		return deny(sdk.ReasonInvalidCode, "the answer is not a WebAuthn assertion")
	}
	// Any assertion ends the challenge, allowed or not: it is single use.
	login := s.Login
	s.Login, s.Used = nil, req.TxID
	res := c.assert(req, &s, login, parsed)
	res.State = s.encode()
	if res.Reason == ReasonClonedAuthenticator {
		p.log.Warn("sign count went backwards: possible cloned authenticator", "user", req.User.ID,
			"credential", res.Details["credential"])
	}
	return res, nil
}

// assert checks an assertion and, on an allow, records the key's use.
func (c *config) assert(req sdk.VerifyRequest, s *state, login *ceremony, parsed *protocol.ParsedCredentialAssertionData) sdk.VerifyResponse {
	deny := func(r sdk.Reason) sdk.VerifyResponse { return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: r} }
	ad := parsed.Response.AuthenticatorData
	if r := c.check(clientCheck{challenge: login.Session.Challenge, client: parsed.Response.CollectedClientData,
		rpIDHash: ad.RPIDHash, uv: ad.Flags.HasUserVerified()}, c.uvRequired(login.Session)); r != "" {
		return deny(r)
	}
	i := s.find(base64.RawURLEncoding.EncodeToString(parsed.RawID))
	if i < 0 {
		return deny(ReasonUnknownCredential)
	}
	l, err := c.wa.ValidateLogin(user{name: req.User.Label(), s: s}, login.Session, parsed)
	if err != nil {
		return deny(ReasonBadSignature)
	}
	k := &s.Creds[i]
	details := map[string]string{"credential": k.ID}
	if l.Authenticator.CloneWarning {
		details["stored_sign_count"] = strconv.FormatUint(uint64(k.SignCount), 10)
		details["sign_count"] = strconv.FormatUint(uint64(ad.Counter), 10)
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: ReasonClonedAuthenticator, Details: details,
			Message: "the key's signature counter went backwards: it may have been cloned"}
	}
	k.SignCount, k.BS, k.UV, k.LastUsed = l.Authenticator.SignCount, l.Flags.BackupState, l.Flags.UserVerified, req.Now
	details["user_verified"] = strconv.FormatBool(ad.Flags.HasUserVerified())
	return sdk.VerifyResponse{Outcome: sdk.Allow, Details: details}
}
