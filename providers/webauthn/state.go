package webauthn

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofactor/twofactor/sdk"
)

const (
	stateVersion = 1
	// maxState bounds the state: maxCredentials credentials with ids of
	// up to 1023 bytes (the spec's limit) and their keys fit well within.
	maxState = 64 << 10
	// maxCredentials is how many keys one user may hold.
	maxCredentials = 10
	// maxLabel bounds a key's label, in bytes.
	maxLabel = 64
	// maxAnswer bounds a browser's response JSON: an attestation with a
	// certificate chain is a few KiB.
	maxAnswer = 32 << 10
)

// state is what the host stores for a user.
type state struct {
	V int `json:"v"`
	// Handle is the random user handle the authenticators keep: not the
	// host's user id, which may be an email address.
	Handle []byte `json:"handle"`
	Creds  []cred `json:"creds"`
	// Reg is a registration begun (begin or add) and not yet finished.
	Reg *ceremony `json:"reg,omitempty"`
	// Login is the one login challenge that may be answered.
	Login *ceremony `json:"login,omitempty"`
	// Used is the TxID of the last challenge answered: a replay of it is
	// told apart from an unknown one.
	Used string `json:"used,omitempty"`
}

// cred is one registered credential.
type cred struct {
	ID         string    `json:"id"` // base64url of the raw credential id
	PublicKey  []byte    `json:"pk"` // COSE key
	SignCount  uint32    `json:"sc"`
	AAGUID     []byte    `json:"aaguid,omitempty"`
	Transports []string  `json:"tr,omitempty"`
	BE         bool      `json:"be,omitempty"` // backup eligible: a synced passkey
	BS         bool      `json:"bs,omitempty"` // backed up now
	UV         bool      `json:"uv,omitempty"` // user verification initialized
	AttType    string    `json:"att_type,omitempty"`
	AttFormat  string    `json:"att_fmt,omitempty"`
	Label      string    `json:"label"`
	Created    time.Time `json:"created"`
	LastUsed   time.Time `json:"used,omitzero"`
}

// ceremony is one challenge handed to the browser: the library's session
// as it returned it (so nothing it records is lost), our own expiry on the
// host's clock, and the TxID the host passes back.
type ceremony struct {
	TxID    string                 `json:"tx"`
	Session gowebauthn.SessionData `json:"session"`
	Expires time.Time              `json:"exp"`
	Label   string                 `json:"label,omitempty"` // the new key's label, on a registration
}

func decodeState(b []byte) (state, error) {
	var s state
	if err := sdk.DecodeState(b, stateVersion, maxState, &s); err != nil {
		return state{}, err
	}
	if len(s.Handle) == 0 || len(s.Handle) > 64 {
		return state{}, sdk.Errorf(sdk.KindInvalidState, "state: no valid user handle")
	}
	if len(s.Creds) > maxCredentials {
		return state{}, sdk.Errorf(sdk.KindInvalidState, "state: more than %d credentials", maxCredentials)
	}
	return s, nil
}

func (s state) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain data always marshals
	}
	return b
}

// find returns the index of the credential with the given id, or -1.
func (s state) find(id string) int {
	for i, c := range s.Creds {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// list is what the host may show of the credentials.
func (s state) list() []sdk.Credential {
	out := make([]sdk.Credential, 0, len(s.Creds))
	for _, c := range s.Creds {
		out = append(out, sdk.Credential{ID: c.ID, Label: c.Label, CreatedAt: c.Created, LastUsedAt: c.LastUsed})
	}
	return out
}

// user adapts a state to the library's User.
type user struct {
	name string
	s    *state
}

func (u user) WebAuthnID() []byte          { return u.s.Handle }
func (u user) WebAuthnName() string        { return u.name }
func (u user) WebAuthnDisplayName() string { return u.name }
func (u user) WebAuthnCredentials() []gowebauthn.Credential {
	out := make([]gowebauthn.Credential, 0, len(u.s.Creds))
	for _, c := range u.s.Creds {
		out = append(out, c.library())
	}
	return out
}

// library is the credential as the library reads it.
func (c cred) library() gowebauthn.Credential {
	id, _ := base64.RawURLEncoding.DecodeString(c.ID) // written by fromLibrary: always valid
	tr := make([]protocol.AuthenticatorTransport, 0, len(c.Transports))
	for _, t := range c.Transports {
		tr = append(tr, protocol.AuthenticatorTransport(t))
	}
	return gowebauthn.Credential{
		ID: id, PublicKey: c.PublicKey, AttestationType: c.AttType, AttestationFormat: c.AttFormat, Transport: tr,
		Flags:         gowebauthn.CredentialFlags{UserPresent: true, UserVerified: c.UV, BackupEligible: c.BE, BackupState: c.BS},
		Authenticator: gowebauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// fromLibrary keeps what a new credential needs for later logins.
func fromLibrary(l *gowebauthn.Credential, label string, now time.Time) cred {
	c := cred{
		ID: base64.RawURLEncoding.EncodeToString(l.ID), PublicKey: l.PublicKey, SignCount: l.Authenticator.SignCount,
		AAGUID: l.Authenticator.AAGUID, BE: l.Flags.BackupEligible, BS: l.Flags.BackupState, UV: l.Flags.UserVerified,
		AttType: l.AttestationType, AttFormat: l.AttestationFormat, Label: label, Created: now,
	}
	for _, t := range l.Transport {
		c.Transports = append(c.Transports, string(t))
	}
	return c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

func newTxID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(16)) }
