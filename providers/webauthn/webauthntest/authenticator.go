// Package webauthntest is a software authenticator for tests: one
// credential on an ECDSA P-256 key that answers the options a relying
// party hands the browser with the JSON the browser would post back
// (attestation "none", CBOR by fxamacker/cbor). Its fields let a test
// forge what a real browser or key would not do: another origin or
// relying party, a counter that goes backwards, no user verification.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Authenticator holds one credential. Set the exported fields before a
// ceremony to change what it answers.
type Authenticator struct {
	// Origin is what the "browser" writes in the client data.
	Origin string
	// RPID, when set, is signed for instead of the options' relying party.
	RPID string
	// UserVerified sets the UV flag (a PIN or biometric was checked).
	UserVerified bool
	// BackupEligible and BackedUp set the BE and BS flags (a synced
	// passkey).
	BackupEligible, BackedUp bool
	// SignCount is the counter the next assertion carries after it is
	// incremented; set it lower to act as a cloned key.
	SignCount uint32
	// Challenge, when set, is written in the client data instead of the
	// options' challenge.
	Challenge string
	// KeyPadding, when set, adds a parameter of that many bytes to the
	// COSE public key Create registers (a label the key's type does not
	// use): an authenticator whose key is larger than any real one.
	KeyPadding int

	key    *ecdsa.PrivateKey
	id     []byte
	handle []byte
	rpID   string
}

// New returns an authenticator whose "browser" is on origin.
func New(origin string) *Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		panic(err)
	}
	return &Authenticator{Origin: origin, key: key, id: id}
}

// ID is the credential id, base64url as the relying party lists it.
func (a *Authenticator) ID() string { return base64.RawURLEncoding.EncodeToString(a.id) }

// options is the part of the creation and request options read here.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64 reads base64url with or without padding.
func decodeB64(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	if a.Challenge != "" {
		challenge = a.Challenge
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) flags(extra byte) byte {
	f := byte(flagUP) | extra
	if a.UserVerified {
		f |= flagUV
	}
	if a.BackupEligible {
		f |= flagBE
	}
	if a.BackedUp {
		f |= flagBS
	}
	return f
}

func (a *Authenticator) authData(rpID string, flags byte, rest []byte) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.SignCount)
	return append(out, rest...)
}

// Create answers credential-creation options (the JSON of
// navigator.credentials.create's argument) with the registration
// response JSON.
func (a *Authenticator) Create(optionsJSON string) (string, error) {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		return "", fmt.Errorf("creation options: %w", err)
	}
	pk := o.PublicKey
	for _, x := range pk.ExcludeCredentials {
		if x.ID == a.ID() {
			return "", errors.New("InvalidStateError: the authenticator already holds an excluded credential")
		}
	}
	var err error
	if a.handle, err = decodeB64(pk.User.ID); err != nil || len(a.handle) == 0 {
		return "", fmt.Errorf("user.id is not base64url: %v", err)
	}
	a.rpID = pk.RP.ID
	cose, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return "", err
	}
	key := map[int]any{1: 2, 3: -7, -1: 1,
		-2: a.key.PublicKey.X.FillBytes(make([]byte, 32)), -3: a.key.PublicKey.Y.FillBytes(make([]byte, 32))}
	if a.KeyPadding > 0 {
		key[-100] = make([]byte, a.KeyPadding)
	}
	pub, err := cose.Marshal(key)
	if err != nil {
		return "", err
	}
	att := make([]byte, 16) // AAGUID: zero, as a "none" attestation sends
	att = binary.BigEndian.AppendUint16(att, uint16(len(a.id)))
	att = append(append(att, a.id...), pub...)
	authData := a.authData(pk.RP.ID, a.flags(flagAT), att)
	obj, err := cose.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(map[string]any{
		"id": a.ID(), "rawId": a.ID(), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(a.clientData("webauthn.create", pk.Challenge)),
			"attestationObject": b64(obj),
			"transports":        []string{"usb"},
		},
	})
	return string(b), err
}

// Get answers credential-request options with the assertion response
// JSON, signed with this credential after incrementing SignCount. It
// answers even when the options do not list it, as a test that sends a
// stranger's key needs.
func (a *Authenticator) Get(optionsJSON string) (string, error) {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		return "", fmt.Errorf("request options: %w", err)
	}
	rpID := o.PublicKey.RPID
	if rpID == "" {
		rpID = a.rpID
	}
	a.SignCount++
	authData := a.authData(rpID, a.flags(0), nil)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, authData...), h[:]...)) // ES256 signs SHA-256(authData || hash)
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(map[string]any{
		"id": a.ID(), "rawId": a.ID(), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64(cd), "authenticatorData": b64(authData), "signature": b64(sig), "userHandle": b64(a.handle),
		},
	})
	return string(b), err
}

// Answer answers either kind of options as a browser would: creation
// options (they name a user) with Create, request options with Get.
func (a *Authenticator) Answer(optionsJSON string) (string, error) {
	var o options
	if err := json.Unmarshal([]byte(optionsJSON), &o); err != nil {
		return "", fmt.Errorf("options: %w", err)
	}
	if o.PublicKey.User.ID != "" {
		return a.Create(optionsJSON)
	}
	return a.Get(optionsJSON)
}
