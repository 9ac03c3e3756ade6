package webauthn

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofactor/twofactor/sdk"
)

// Reasons this provider gives beyond the SDK's vocabulary. Each is a
// deny that counts against the user's attempt budget (the host counts
// every reason it does not know as a failure).
const (
	// ReasonWrongOrigin: the browser collected the answer on a page whose
	// origin is not in the origins setting (a phishing proxy's page).
	ReasonWrongOrigin sdk.Reason = "x-wrong_origin"
	// ReasonWrongRPID: the authenticator signed for another relying party.
	ReasonWrongRPID sdk.Reason = "x-wrong_rp_id"
	// ReasonUnknownCredential: the answer comes from a credential this
	// user does not hold (another user's key, or a removed one).
	ReasonUnknownCredential sdk.Reason = "x-unknown_credential"
	// ReasonBadSignature: the assertion or attestation does not verify.
	ReasonBadSignature sdk.Reason = "x-bad_signature"
	// ReasonUserVerificationRequired: user_verification is required and
	// the authenticator did not verify the user (no PIN, no biometric).
	ReasonUserVerificationRequired sdk.Reason = "x-user_verification_required"
	// ReasonClonedAuthenticator: the signature counter did not go up, so
	// two copies of the key may exist. Denied and audited with the
	// counters in the details.
	ReasonClonedAuthenticator sdk.Reason = "x-cloned_authenticator"
	// ReasonCredentialExists: enrollment of a key the user already holds.
	ReasonCredentialExists sdk.Reason = "x-credential_exists"
	// ReasonCredentialTooLarge: enrollment of a key whose credential (id
	// and public key) does not fit in the state beside the keys held.
	ReasonCredentialTooLarge sdk.Reason = "x-credential_too_large"
)

// clientCheck is what a ceremony's answer must show before the library
// checks the signature: our own checks come first so that each refusal
// gets a reason of its own; the library then checks everything again.
type clientCheck struct {
	challenge string // the ceremony's challenge, base64url
	client    protocol.CollectedClientData
	rpIDHash  []byte
	uv        bool // the authenticator verified the user
}

// uvRequired says whether an answer to a ceremony begun with session
// must show user verification: the stricter of the policy in force now
// and the one the challenge was issued under. A reload that makes it
// required applies to challenges already in flight (fail closed), and
// one that relaxes it does not loosen them.
func (c *config) uvRequired(session gowebauthn.SessionData) bool {
	return c.uv == protocol.VerificationRequired || session.UserVerification == protocol.VerificationRequired
}

// check returns why the answer is refused, or ReasonNone.
func (c *config) check(k clientCheck, uvRequired bool) sdk.Reason {
	if subtle.ConstantTimeCompare([]byte(k.client.Challenge), []byte(k.challenge)) != 1 {
		// An answer to another challenge: an old one replayed.
		return sdk.ReasonReplayed
	}
	if !c.originAllowed(k.client.Origin) {
		return ReasonWrongOrigin
	}
	want := sha256.Sum256([]byte(c.rpID))
	if subtle.ConstantTimeCompare(k.rpIDHash, want[:]) != 1 {
		return ReasonWrongRPID
	}
	if uvRequired && !k.uv {
		return ReasonUserVerificationRequired
	}
	return sdk.ReasonNone
}

// originAllowed compares an origin as browsers write it (scheme://host
// with the port unless default) with the configured ones.
func (c *config) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" {
		return false
	}
	o := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, a := range c.origins {
		if o == a {
			return true
		}
	}
	return false
}
