package webauthn

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofactor/twofactor/sdk"
)

// Enroll implements sdk.Provider. Begin (a first key) and add (another
// one, on the active state) return the creation options; finish takes
// the browser's attestation response as the code; remove and list manage
// the keys held.
func (p *Provider) Enroll(_ context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	c, err := p.config()
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	switch req.Step {
	case sdk.EnrollBegin:
		s := state{V: stateVersion, Handle: randomBytes(32), Creds: []cred{}}
		return c.beginRegistration(req, s)
	case sdk.EnrollAdd:
		s, err := decodeState(req.State)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		if len(s.Creds) >= maxCredentials {
			return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInvalidRequest, "a user holds at most %d keys; remove one first", maxCredentials)
		}
		return c.beginRegistration(req, s)
	case sdk.EnrollFinish:
		s, err := decodeState(req.State)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		resp := c.finishRegistration(req, s)
		if resp.Done {
			p.log.Info("security key registered", "user", req.User.ID, "keys", len(s.Creds)+1)
		}
		return resp, nil
	case sdk.EnrollRemove:
		s, err := decodeState(req.State)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		i := s.find(req.Credential)
		switch {
		case i < 0:
			return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "credential", "the user holds no key with that id")
		case len(s.Creds) == 1:
			return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "credential",
				"it is the user's last key: remove the whole enrollment instead")
		}
		s.Creds = append(s.Creds[:i], s.Creds[i+1:]...)
		p.log.Info("security key removed", "user", req.User.ID, "keys", len(s.Creds))
		return sdk.EnrollResponse{State: s.encode(), Done: true, Credentials: s.list()}, nil
	case sdk.EnrollList:
		s, err := decodeState(req.State)
		if err != nil {
			return sdk.EnrollResponse{}, err
		}
		return sdk.EnrollResponse{Done: true, Credentials: s.list()}, nil
	}
	return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInvalidRequest, "unknown enrollment step %q", req.Step)
}

// beginRegistration asks the browser for a new credential, excluding the
// ones the user holds, and keeps the challenge in the state.
func (c *config) beginRegistration(req sdk.EnrollRequest, s state) (sdk.EnrollResponse, error) {
	label, err := parseLabel(req.Inputs["label"], len(s.Creds)+1)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	u := user{name: req.User.Label(), s: &s}
	var exclude []protocol.CredentialDescriptor
	for _, l := range u.WebAuthnCredentials() {
		exclude = append(exclude, l.Descriptor())
	}
	creation, session, err := c.wa.BeginRegistration(u, gowebauthn.WithExclusions(exclude))
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "begin registration: %v", err)
	}
	public, err := json.Marshal(creation)
	if err != nil {
		return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "creation options: %v", err)
	}
	// Expiry is ours, on the host's clock; the library would use its own.
	session.Expires = time.Time{}
	s.Reg = &ceremony{TxID: newTxID(), Session: *session, Expires: req.Now.Add(c.timeout), Label: label}
	return sdk.EnrollResponse{State: s.encode(), Display: sdk.Display{
		Public:       string(public),
		Instructions: "Insert your security key and touch it, or use your passkey, when your browser asks.",
	}}, nil
}

// finishRegistration checks the browser's attestation response against
// the registration begun and adds the credential. A registration is
// answered once, right or wrong, as a login challenge is: any attestation
// ends it, and the refusal returns the state without it (the keys held
// unchanged), which the host stores, so the same challenge cannot be
// answered again. An expired one ends too; what is not an attestation at
// all (a typed code, a truncated post) checked nothing against the
// challenge and leaves it for the browser's real answer.
func (c *config) finishRegistration(req sdk.EnrollRequest, s state) sdk.EnrollResponse {
	switch {
	case s.Reg == nil:
		return sdk.EnrollResponse{Reason: sdk.ReasonReplayed} // nothing begun, or already finished
	case len(req.Code) == 0 || len(req.Code) > maxAnswer:
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}
	}
	reg := s.Reg
	s.Reg = nil
	spent := func(r sdk.Reason) sdk.EnrollResponse { return sdk.EnrollResponse{Reason: r, State: s.encode()} }
	if !req.Now.Before(reg.Expires) {
		return spent(sdk.ReasonExpired)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(req.Code))
	if err != nil {
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}
	}
	authData := parsed.Response.AttestationObject.AuthData
	if r := c.check(clientCheck{challenge: reg.Session.Challenge, client: parsed.Response.CollectedClientData,
		rpIDHash: authData.RPIDHash, uv: authData.Flags.HasUserVerified()}, c.uvRequired(reg.Session)); r != "" {
		return spent(r)
	}
	u := user{name: req.User.Label(), s: &s}
	l, err := c.wa.CreateCredential(u, reg.Session, parsed)
	if err != nil {
		return spent(ReasonBadSignature)
	}
	n := fromLibrary(l, reg.Label, req.Now)
	if s.find(n.ID) >= 0 {
		return spent(ReasonCredentialExists)
	}
	// The state must stay one decodeState reads: a key as large as an
	// answer may carry (up to maxAnswer) fits, but a few of them do not,
	// and a state past maxState would lose every key the user holds.
	added := s
	added.Creds = append(append([]cred{}, s.Creds...), n)
	b := added.encode()
	if len(b) > maxState {
		return spent(ReasonCredentialTooLarge)
	}
	return sdk.EnrollResponse{State: b, Done: true, Credentials: added.list()}
}

// parseLabel checks a key's label: one printable line of at most
// maxLabel bytes; "Security key N" when empty.
func parseLabel(in string, n int) (string, error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return fmt.Sprintf("Security key %d", n), nil
	}
	if len(in) > maxLabel {
		return "", sdk.FieldError(sdk.KindInvalidRequest, "label", "is longer than %d bytes", maxLabel)
	}
	for _, r := range in {
		if !unicode.IsPrint(r) {
			return "", sdk.FieldError(sdk.KindInvalidRequest, "label", "must be one line of printable characters")
		}
	}
	return in, nil
}
