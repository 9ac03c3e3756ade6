package ui

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// A token is "base64url(JSON claims) . base64url(HMAC-SHA256(key, first
// part))". It is the only credential of the UI: the host application gets
// one for a user from the API, and every page and form of the UI carries
// it. Tokens are signed, not encrypted: the claims (user id, audience,
// provider, return URL) are readable by whoever holds the link.

// Token kinds. A link opens a page; the others are derived from a link by
// the UI itself and carry the original link's claims.
const (
	kindLink   = ""       // issued by the API: opens the enroll, verify or admin page
	kindForm   = "form"   // the verify page after its login decision: its forms and provider switches
	kindWait   = "wait"   // a pending push: polls its transaction
	kindResult = "result" // a decided verification: shown to the user and handed back to the application
	kindStepUp = "stepup" // the security page's step-up: verify with a factor, then do its Action
)

// Pages a link opens.
const (
	PageEnroll = "enroll"
	PageVerify = "verify"
	PageAdmin  = "admin"
	// PageSecurity is the user's own security page: factors, recovery
	// codes, remembered devices.
	PageSecurity = "security"
)

// claims are what a token says. The JSON names are short: tokens travel
// in URLs.
type claims struct {
	Page     string `json:"p"`
	User     string `json:"u,omitempty"`
	Audience string `json:"a,omitempty"`
	Provider string `json:"pv,omitempty"`
	Return   string `json:"r,omitempty"`
	Issuer   string `json:"i,omitempty"` // the API key's name that asked for the link
	Nonce    string `json:"n"`           // the link's id, random
	Exp      int64  `json:"e"`           // Unix seconds

	Kind    string `json:"k,omitempty"`
	LinkExp int64  `json:"le,omitempty"` // the original link's expiry, in derived tokens
	TxID    string `json:"tx,omitempty"`
	Outcome string `json:"o,omitempty"`
	Reason  string `json:"rs,omitempty"`
	Message string `json:"ms,omitempty"` // the provider's words for a denial by policy
	Portal  string `json:"pu,omitempty"` // where the backend lets the user enroll (enrollment_required)
	Method  string `json:"m,omitempty"`  // what the user answered with: the provider or "recovery", or why no answer was needed
	// Unprompted, in the result of an allow, says the provider let the
	// user in without asking anything (a push provider's bypass): Method names the
	// provider, but nothing was answered.
	Unprompted bool  `json:"up,omitempty"`
	At         int64 `json:"at,omitempty"` // when a result was decided
	// CodesLeft, in the result of an allow by recovery code, is how many
	// of the user's codes are left, in decimal ("0" included); "" in any
	// other token.
	CodesLeft string `json:"cl,omitempty"`

	// A verify form after a challenge was sent (a mailed code): TxID and
	// Method name it, SentMsg is the provider's sentence for the user (never
	// the code), ResendAt (Unix milliseconds) when another may be sent.
	SentMsg  string `json:"sn,omitempty"`
	ResendAt int64  `json:"ra,omitempty"`
	// Inputs prefill an enroll link's form (an email address), URL-encoded
	// (claims stay comparable); with FixInputs they are the only ones
	// accepted.
	Inputs    string `json:"in,omitempty"`
	FixInputs bool   `json:"fi,omitempty"`

	Remember bool   `json:"rm,omitempty"` // wait: the user asked to remember this device
	Then     string `json:"th,omitempty"` // an enroll link the login or security page made: PageVerify or PageSecurity, where to go once enrolled
	Action   string `json:"ac,omitempty"` // stepup: what the step-up allows once verified ("regenerate", "remove:PROVIDER")
	// A setup link the UI derives (Then set) stands for the user's factors
	// when it was made, and is checked against them on every use
	// (setupLinkCurrent). StepUp marks the one the security page signs
	// after a step-up's allow; Factors is then the fingerprint of the
	// user's active factors at that moment (factorsFingerprint). A setup
	// link derived without a step-up (the login page's "enroll", the
	// security page of a user with no factor) has neither: it stands for
	// "no active factor". An application's enroll link (no Then) has
	// neither either, and is not checked: the application decides.
	StepUp  bool   `json:"su,omitempty"`
	Factors string `json:"fs,omitempty"`

	decision
}

// decision is the login decision (framework.Challenge) a verify page
// opened with. Its form, wait and derived enroll tokens carry it, so the
// posts and pages that follow act on it without deciding again: a decision
// is made, and audited, once per page open (it may use a grace login).
type decision struct {
	Decision  string `json:"dc,omitempty"` // verify, deny or enroll; allow for a grace login's result
	Why       string `json:"wy,omitempty"`
	Providers string `json:"ps,omitempty"` // the decision's providers: "name:factor+factor,..."
	Days      int    `json:"dd,omitempty"` // verify: "remember this device" offered for so many days
	Recovery  bool   `json:"rc,omitempty"` // verify, deny: the user has recovery codes left
	Until     int64  `json:"un,omitempty"` // deny: when the lockout ends, Unix milliseconds
	Grace     int    `json:"g,omitempty"`  // grace login: how many are left after this one
}

// inputs are the link's enrollment inputs.
func (c claims) inputs() map[string]string {
	q, err := url.ParseQuery(c.Inputs)
	if err != nil || len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k := range q {
		out[k] = q.Get(k)
	}
	return out
}

// encodeInputs writes enrollment inputs for claims.Inputs.
func encodeInputs(in map[string]string) string {
	q := url.Values{}
	for k, v := range in {
		q.Set(k, v)
	}
	return q.Encode()
}

// link returns the claims of the link a derived token came from: signed
// again, they give back the very token the application issued.
func (c claims) link() claims {
	l := claims{Page: c.Page, User: c.User, Audience: c.Audience, Provider: c.Provider, Return: c.Return,
		Issuer: c.Issuer, Nonce: c.Nonce, Exp: c.Exp, Inputs: c.Inputs, FixInputs: c.FixInputs}
	if c.Kind != kindLink {
		l.Exp = c.LinkExp
	}
	return l
}

// derive makes a token of another kind from a link's claims, valid for ttl
// from now.
func (c claims) derive(kind string, now time.Time, ttl time.Duration) claims {
	d := c.link()
	d.Kind, d.LinkExp, d.Exp = kind, d.Exp, now.Add(ttl).Unix()
	return d
}

// form returns the claims of a verify page's forms after decision d: valid
// as long as the link they come from.
func (c claims) form(d decision) claims {
	f := c.link()
	f.Kind, f.LinkExp, f.decision = kindForm, f.Exp, d
	return f
}

// Token errors; each has its own page.
var (
	errTokenMissing = errors.New("no link token")
	errTokenInvalid = errors.New("link token is not valid")
	errTokenExpired = errors.New("link token has expired")
)

// signer signs and checks tokens and derives CSRF values from them.
type signer struct {
	sign, csrf, cookie, display []byte
}

func newSigner(key []byte) (*signer, error) {
	if len(key) < 32 {
		return nil, errors.New("ui: the signing key must be at least 32 bytes")
	}
	sign, err := hkdf.Key(sha256.New, key, nil, "twofactor ui token v1", 32)
	if err != nil {
		return nil, err
	}
	csrf, err := hkdf.Key(sha256.New, key, nil, "twofactor ui csrf v1", 32)
	if err != nil {
		return nil, err
	}
	cookie, err := hkdf.Key(sha256.New, key, nil, "twofactor ui device cookie v1", 32)
	if err != nil {
		return nil, err
	}
	display, err := hkdf.Key(sha256.New, key, nil, "twofactor ui enroll display v1", 32)
	if err != nil {
		return nil, err
	}
	return &signer{sign: sign, csrf: csrf, cookie: cookie, display: display}, nil
}

// b64 decodes strictly: without Strict a signature's last character
// carries two ignored bits, so four spellings of one token would all be
// accepted (and each gets its own CSRF value).
var b64 = base64.RawURLEncoding.Strict()

func (s *signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.sign)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (s *signer) token(c claims) string {
	j, err := json.Marshal(c)
	if err != nil {
		panic(err) // claims are strings and integers
	}
	payload := b64.EncodeToString(j)
	return payload + "." + b64.EncodeToString(s.mac(payload))
}

// maxToken bounds what is parsed: a link with a long user id and return
// URL stays well below.
const maxToken = 4096

// parse checks a token's signature (in constant time) and expiry.
func (s *signer) parse(tok string, now time.Time) (claims, error) {
	if tok == "" {
		return claims{}, errTokenMissing
	}
	payload, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > maxToken {
		return claims{}, errTokenInvalid
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return claims{}, errTokenInvalid
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return claims{}, errTokenInvalid
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil || c.Nonce == "" || c.Exp == 0 {
		return claims{}, errTokenInvalid
	}
	if now.Unix() >= c.Exp {
		return c, errTokenExpired
	}
	return c, nil
}

// csrfValue is the CSRF value of the forms on a page opened with tok. It
// is a MAC of the token under a key of its own, so it cannot be computed
// from a link, only read from a page the UI rendered for it.
func (s *signer) csrfValue(tok string) string {
	m := hmac.New(sha256.New, s.csrf)
	m.Write([]byte(tok))
	return b64.EncodeToString(m.Sum(nil))
}

func (s *signer) checkCSRF(tok, value string) bool {
	return hmac.Equal([]byte(s.csrfValue(tok)), []byte(value))
}

func newNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b64.EncodeToString(b)
}
