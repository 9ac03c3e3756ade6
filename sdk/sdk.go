package sdk

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// ProtocolVersion is the newest wire protocol this SDK speaks; version 2
// added the challenge step (Challenger). Serve offers every version from
// MinProtocolVersion to ProtocolVersion, a host offers the ones it speaks,
// and go-plugin picks the newest both offer, so a plugin built with an
// older SDK keeps working unchanged. A provider never states its version:
// the negotiated one is what counts. A host refuses a plugin that offers
// no protocol version it knows, naming both sides' versions in the error.
const ProtocolVersion = wire.MaxVersion

// MinProtocolVersion is the oldest wire protocol this SDK still serves and
// speaks to; it only changes with a major release.
const MinProtocolVersion = wire.MinVersion

// Provider is the contract every two-factor provider implements. A provider
// is stateless: all per-user state travels in the requests as an opaque blob
// that the host stores encrypted and versions, so a provider can be
// restarted, replicated or replaced without losing an enrollment.
//
// Methods must be safe for concurrent use. Errors that the host must tell
// apart are returned as *Error (see the Kind constants); a wrong code or a
// denied push is not an error but a VerifyResponse with Outcome Deny.
type Provider interface {
	// Info describes the provider. It must work before Configure.
	Info(ctx context.Context) (Info, error)
	// Configure validates and applies the admin's settings without contacting
	// any backend. A bad value is an *Error of KindInvalidSettings naming the
	// field.
	Configure(ctx context.Context, settings Settings) error
	// Activate checks the configured provider against its backend and reports
	// its health. The host calls it at start and on a schedule.
	Activate(ctx context.Context) (Activation, error)
	// Enroll runs one step of the enrollment state machine.
	Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error)
	// Verify checks a user's answer to a challenge.
	Verify(ctx context.Context, req VerifyRequest) (VerifyResponse, error)
}

// Info is what a provider says about itself.
type Info struct {
	Name         string // lower-case identifier, [a-z0-9_-], used in config and URLs
	Version      string // the provider's own release version
	Description  string
	Schema       Schema
	Capabilities Capabilities
	// EnrollInputs are what enrollment asks the user for (an email
	// address, a phone number), validated by the host with Schema.Parse
	// before EnrollBegin, which receives them in EnrollRequest.Inputs. Never
	// Secret: the host shows them back to the user.
	EnrollInputs Schema
	// CodeInput is the code the user types to sign in (Verify's code, a
	// push provider's passcode), so that a host offers a field that takes
	// it. Info comes before Configure: when the length is a setting, give
	// the range every allowed setting falls in. The zero value leaves the
	// host's default (up to 12 digits; a push provider's passcode up to
	// 44 characters); a value outside CodeInput.Validate refuses the
	// plugin's start.
	CodeInput CodeInput
	// Texts are what the host's pages say about the provider (its name
	// in a sentence, its setup advice); the zero value leaves the host's
	// generic words. A value outside Texts.Validate refuses the plugin's
	// start.
	Texts Texts
}

// Capabilities tell the host which interactions a provider supports.
type Capabilities struct {
	Code                    bool // Verify accepts a typed code
	Push                    bool // Verify can start an out-of-band approval and be polled
	EnrollNeedsConfirmation bool // Enroll finish requires proof (a code) from the user
	// Factors lists the factors VerifyRequest.Factor and
	// ChallengeRequest.Factor may name besides the default (the empty
	// Factor, which every provider serves). The host refuses any other
	// factor of a protocol 2 plugin with invalid_request before calling the
	// provider; a provider refuses one itself (KindInvalidRequest), which
	// the conformance kit checks.
	Factors []Factor
	// Challenges lists the factors whose Verify needs a Challenge first
	// (protocol version 2): the provider must implement Challenger. The
	// empty Factor stands for the provider's default factor; any other is
	// also in Factors.
	Challenges []Factor
	// MultipleCredentials: one enrollment holds several credentials
	// (security keys), each with a label. The host then lets the user add
	// one to an active enrollment (EnrollAdd, then EnrollFinish), remove
	// one (EnrollRemove) and list them (EnrollList).
	MultipleCredentials bool
	// SilentChallenges: Challenge sends nothing to the user, it only
	// returns what the client answers (WebAuthn options). The host then
	// allows SilentChallengeFactor times the send limit for it, which
	// guards users against floods of codes and pushes: a challenge the
	// user started and cancelled costs them nothing.
	SilentChallenges bool
	// EnrollSendsTo names the EnrollInputs field whose value EnrollBegin
	// sends a message to (the email provider mails a code to "email"), or
	// is empty when EnrollBegin sends nothing. The host then holds every
	// EnrollBegin to its send limit, as it does a Challenge: per user and
	// provider, and per destination (the input's value), so that no one
	// can mail an address again and again by restarting an enrollment
	// from one account or from many. The field must be a required string
	// input (the conformance kit checks it).
	EnrollSendsTo string
}

// SilentChallengeFactor is how many times the host's send limit a
// provider with Capabilities.SilentChallenges may challenge a user.
const SilentChallengeFactor = 5

// Factor names one interaction of a provider when it offers several, such
// as "push" or "passcode"; the empty Factor is the provider's default.
type Factor string

// Offers reports whether a request may name factor f: the default, or
// one of Factors.
func (c Capabilities) Offers(f Factor) bool {
	if f == "" {
		return true
	}
	for _, x := range c.Factors {
		if x == f {
			return true
		}
	}
	return false
}

// NeedsChallenge reports whether Verify of factor f needs a Challenge
// first.
func (c Capabilities) NeedsChallenge(f Factor) bool {
	for _, x := range c.Challenges {
		if x == f {
			return true
		}
	}
	return false
}

// Settings are the admin's settings for a provider, as strings keyed by field
// name. Use Schema.Parse to validate them and read typed values.
type Settings map[string]string

// Health is a provider's state as seen from its backend.
type Health string

// Health values.
const (
	Healthy   Health = "healthy"
	Degraded  Health = "degraded"
	Unhealthy Health = "unhealthy"
)

// Activation is the result of Activate. A provider that can still decide
// while its backend is unreachable (Duo's failmode) reports that as an
// Activation with Health Unhealthy and a diagnostic, not as an error, so
// that the host serves it; an error from Activate means the provider cannot
// serve at all (wrong credentials, a refused setting).
type Activation struct {
	Health Health
	// Diagnostics are human-readable findings for the admin, such as a clock
	// offset or which credential a backend rejected. Never secrets.
	Diagnostics []Diagnostic
}

// Diagnostic is one finding reported by Activate.
type Diagnostic struct {
	Code    string // stable machine-readable identifier, e.g. "clock_offset"
	Message string
	Value   string // optional measured value, e.g. "-42s"
	// Severity says how much it matters; empty is SeverityInfo (what a
	// provider built before the field existed sends).
	Severity Severity
	// Fix says what the admin should change, naming the setting (for
	// example "copy the Secret key ... into providers.duo.settings.secret_key").
	// The host prints it as it is: it knows nothing about the backend.
	// Required for SeverityError (the conformance kit checks it).
	Fix string
}

// Severity ranks a Diagnostic.
type Severity string

// Severities.
const (
	SeverityInfo    Severity = "info"    // for the record
	SeverityWarning Severity = "warning" // works, but should be changed
	SeverityError   Severity = "error"   // does not work until fixed
)

// User identifies the end user a request is about.
type User struct {
	ID string // the host application's stable user id
	// AccountName is what the user sees in an authenticator app; it defaults
	// to ID when empty.
	AccountName string
}

// Label returns the name to show the user: AccountName or else ID.
func (u User) Label() string {
	if u.AccountName != "" {
		return u.AccountName
	}
	return u.ID
}

// EnrollStep names a step of the enrollment state machine.
type EnrollStep string

// Enrollment steps.
const (
	EnrollBegin  EnrollStep = "begin"
	EnrollFinish EnrollStep = "finish"
	// The steps of a provider with Capabilities.MultipleCredentials, on an
	// active enrollment's State. EnrollAdd starts one more credential (it
	// answers as EnrollBegin does and is finished by EnrollFinish, which
	// must keep the credentials already there); EnrollRemove drops
	// EnrollRequest.Credential (an error of KindInvalidRequest for the
	// last one or an unknown one) and answers Done with the new State and
	// the Credentials left; EnrollList answers Done with the Credentials
	// and no State: it changes nothing.
	EnrollAdd    EnrollStep = "add"
	EnrollRemove EnrollStep = "remove"
	EnrollList   EnrollStep = "list"
)

// EnrollRequest is one enrollment step.
type EnrollRequest struct {
	User User
	Step EnrollStep
	// State is what the previous step returned; nil on EnrollBegin.
	State []byte
	// Code is the user's confirmation code for EnrollFinish, if the provider
	// needs one.
	Code string
	// Inputs are the user's answers to Info.EnrollInputs, on EnrollBegin;
	// the host checked them against that schema.
	Inputs map[string]string
	// Credential is the id (from EnrollList) of the credential an
	// EnrollRemove step removes.
	Credential string
	// Now is the host's trusted time for this request; providers must use it
	// instead of their own clock so that every replica agrees.
	Now time.Time
}

// EnrollResponse is the result of one enrollment step.
type EnrollResponse struct {
	// State replaces the stored state. It must be non-empty when Done.
	State []byte
	// Done is true when the factor is confirmed and may be used to verify.
	Done bool
	// Reason explains why a finish step did not complete (for example
	// ReasonInvalidCode); empty on success.
	Reason Reason
	// Display is what to show the user on EnrollBegin.
	Display Display
	// Credentials are the enrollment's credentials, from EnrollList (and
	// EnrollRemove), for a provider with Capabilities.MultipleCredentials.
	Credentials []Credential
}

// Credential is one of the credentials an enrollment holds (a security
// key). Nothing in it is secret.
type Credential struct {
	ID         string // stable, URL-safe: what EnrollRemove names
	Label      string // the user's name for it
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used
}

// Display is what the host shows a user during enrollment. Its fields are
// sensitive (an otpauth URL contains the TOTP secret): hosts show them once
// and never store or log them.
type Display struct {
	OTPAuthURL     string // otpauth:// key URI
	QRPNG          []byte // PNG image of a QR code to scan
	ActivationURL  string // a link to open on the phone (Duo)
	ActivationCode string // a code to type or scan into an app (Duo)
	BarcodeURL     string // an image of a QR code served by the backend (Duo)
	Instructions   string // one sentence for the user
	// Public is what the client needs to continue, handed to it unchanged
	// (WebAuthn credential-creation options, as JSON). Never a secret.
	Public string
	// CodeInput is the code that EnrollFinish expects, when the user
	// types one; the zero value leaves the host's default.
	CodeInput CodeInput
	// SignInCodeInput is the code this enrollment signs in with, when the
	// enrollment fixes it (a TOTP enrollment's digits, kept in its state
	// whatever the setting becomes); the host keeps it with the
	// enrollment and offers it, rather than Info.CodeInput's range, on
	// this user's sign-in. Leave it zero when the sign-in code follows a
	// setting that may change after enrollment (an emailed code's length):
	// the host then offers Info.CodeInput. A value outside Info.CodeInput
	// (another kind, or lengths beyond its range) is refused at enrollment.
	SignInCodeInput CodeInput
}

// VerifyRequest is one answer to a challenge.
type VerifyRequest struct {
	User User
	// State is the stored state of the user's confirmed enrollment.
	State []byte
	// Code is the code the user typed, exactly as received; providers
	// normalise it.
	Code string
	// Factor chooses an interaction when a provider supports several, such
	// as "push" or "passcode"; empty means the provider's default. It is
	// empty or one of Capabilities.Factors.
	Factor Factor
	// TxID polls a pending out-of-band transaction started by an earlier
	// Verify.
	TxID string
	// ClientIP is the end user's address as seen by the host application,
	// when known.
	ClientIP string
	// Now is the host's trusted time for this request.
	Now time.Time
	// TrustToken is a token this provider returned earlier
	// (VerifyResponse.TrustToken) on an allow for this user, from the
	// device the user is on now: the host keeps it sealed with the
	// remembered device it issued. A provider whose backend still trusts it
	// may allow without asking (Unprompted); empty when the device has none.
	TrustToken string
	// Failures is how many failed attempts the user has made since their
	// last success, this one not included (attempts still being decided
	// count), as the host's attempt budget counts them; 0 when the host
	// counts none for this verification, and from a host older than the
	// field. A provider may explain less after the first failure of a run
	// (TOTP looks for a device with a wrong clock only then: on a guessing
	// run that scan is work and information for the guesser); the outcome
	// must not depend on it.
	Failures int
}

// Outcome is the result of a verification.
type Outcome string

// Outcomes.
const (
	Allow   Outcome = "allow"
	Deny    Outcome = "deny"
	Pending Outcome = "pending"
)

// VerifyResponse is the result of Verify.
type VerifyResponse struct {
	Outcome Outcome
	// Reason is a Reason constant of this package or a custom reason
	// (Reason.IsCustom); the host denies anything else as
	// ReasonInvalidReason.
	Reason Reason
	// Message is a short human-readable explanation, safe to show an admin.
	Message string
	// TxID identifies a pending out-of-band transaction to poll.
	TxID string
	// State, when non-nil, replaces the stored state. The host writes it with
	// compare-and-swap, so two verifies of one code cannot both succeed.
	State []byte
	// Details carry extra facts for the audit log, such as the clock offset
	// in steps behind ReasonClockSkewSuspected. Never secrets or codes.
	Details map[string]string
	// Unprompted marks an allow the backend gave without asking the user
	// anything now (a bypass, a device the backend remembers). It is no
	// proof that the user holds the factor, so the host never remembers a
	// device on it.
	Unprompted bool
	// TrustToken, on an allow, is the backend's own remembered-device token
	// for the device the user answered on (Duo's trusted_device_token). It
	// is a secret: the host stores it sealed with the remembered device it
	// issues, never shows it to anyone, and sends it back as
	// VerifyRequest.TrustToken on later verifies from that device.
	TrustToken string
}

// Challenger is implemented by a provider with a challenge step (protocol
// version 2): before Verify of a factor listed in Capabilities.Challenges,
// the host calls Challenge, which sends something to the user (a code by
// email) or returns what the client needs to answer (security key
// options). Verify then receives the TxID with the user's answer.
//
// It is a separate interface so that a provider written before it still
// satisfies Provider; the host never calls it on a plugin that negotiated
// protocol version 1.
type Challenger interface {
	Challenge(ctx context.Context, req ChallengeRequest) (ChallengeResponse, error)
}

// ChallengeRequest starts a verification that needs a challenge.
type ChallengeRequest struct {
	User User
	// State is the stored state of the user's confirmed enrollment.
	State []byte
	// Factor is one of Capabilities.Challenges.
	Factor Factor
	// ClientIP is the end user's address as seen by the host application,
	// when known.
	ClientIP string
	// Now is the host's trusted time for this request; providers must use
	// it instead of their own clock.
	Now time.Time
}

// ChallengeResponse is a challenge sent or prepared.
type ChallengeResponse struct {
	// State, when non-nil, replaces the stored state (for example the keyed
	// hash of the code just sent); the host writes it with compare-and-swap.
	State []byte
	// TxID identifies this challenge; the host passes it back in
	// VerifyRequest.TxID with the answer.
	TxID string
	// Message is one sentence for the user ("We sent a code to a***@example.com").
	// Never the code itself.
	Message string
	// ExpiresAt is when the answer stops being accepted.
	ExpiresAt time.Time
	// ResendAfter is the earliest time a new Challenge may send again; the
	// host refuses an earlier one without calling the provider.
	ResendAfter time.Time
	// Public is what the client needs to answer (for example WebAuthn
	// options as JSON). It is shown to the client: never a secret.
	Public string
}

// CheckFactor returns nil if a request may name factor f (Offers), else
// an *Error of KindInvalidRequest naming the field "factor": what a
// provider's Verify and Challenge answer to a factor it does not offer.
func (c Capabilities) CheckFactor(f Factor) error {
	if c.Offers(f) {
		return nil
	}
	return FieldError(KindInvalidRequest, "factor", "unknown factor %q", f)
}
