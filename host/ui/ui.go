// Package ui is the host's web UI: server-rendered pages where an end user
// enrolls (a QR code to scan, an app's activation), saves recovery codes
// and verifies at login (a code, or a push with a page that waits for the
// approval), and where an admin sees the providers' health. The pages name
// no provider: what they say about one is its own words (sdk.Info.Texts),
// or the UI's generic words for its kind of factor (see texts.go).
//
// The UI has no login system. The host application asks the API for a
// short-lived signed link for one user, page, audience and provider (see
// NewLink) and sends the user's browser to it; every page and form carries
// that token. After a verification the user is sent back to the
// application's return URL with a signed result the application checks with
// the API (see CheckResult).
//
// The verify page is a login page: it opens with the login policy's
// decision (framework.Challenge) for the user and audience, with this
// browser's remembered-device cookie, and acts on it: an allow goes
// straight to the result; verify shows the forms of the providers the
// decision lists (and only those); enroll offers to set one up; deny says
// when to try again and offers a recovery code. The setup links the UI
// derives (from that enroll decision, or from the security page) stand for
// the user's factors when they were made and are checked again at each
// use: see setupLinkCurrent. "Remember this device"
// stores the framework's device token in an HttpOnly cookie named per
// user and audience.
//
// A provider that sends its code (by mail) gets "Send code", then the code
// field and "Resend in N s": the send is the framework's StartVerification
// (its send limit, its challenge_sent audit), the form token that follows
// carries the challenge's txid, and the seconds left are rendered by the
// server on its clock. An enroll page renders the inputs the provider
// declares (an address to send codes to), prefilled or fixed by the link.
//
// Pages work without JavaScript; the push waiting page polls with a small
// script and falls back to a refresh, and the resend button's countdown is
// a script over a server-rendered number. Every response carries a strict
// Content-Security-Policy; every form has a CSRF value bound to the token.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Framework is what the UI uses of the framework.
type Framework interface {
	BeginEnrollment(ctx context.Context, in framework.EnrollInput) (framework.EnrollResult, error)
	ConfirmEnrollment(ctx context.Context, userID, provider, code string) (framework.ConfirmResult, error)
	Challenge(ctx context.Context, in framework.ChallengeInput) (framework.ChallengeResult, error)
	Verify(ctx context.Context, in framework.VerifyInput) (framework.VerifyResult, error)
	StartVerification(ctx context.Context, in framework.StartInput) (framework.StartResult, error)
	SendSetupCode(ctx context.Context, in framework.SetupSendInput) (framework.SetupSendResult, error)
	EnrollInputs(provider string) sdk.Schema
	CheckEnrollInputs(provider string, inputs map[string]string, partial bool) error
	Poll(ctx context.Context, in framework.PollInput) (framework.VerifyResult, error)
	Enrollments(ctx context.Context, userID string) ([]framework.EnrollmentInfo, error)
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
	RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error)
	Providers() []framework.ProviderStatus
	Refresh(ctx context.Context)
	MultipleCredentials(provider string) bool
	// What the pages say about a provider, and whether the browser answers
	// its challenge: the pages name no provider.
	Texts(provider string) sdk.Texts
	SilentChallenges(provider string) bool
	Credentials(ctx context.Context, userID, provider string) ([]sdk.Credential, error)
	// The code a user types to sign in with a provider: their
	// enrollment's length, within the provider's declared range.
	SignInCode(ctx context.Context, userID, provider string) sdk.CodeInput
	// The security page's.
	Factors(provider string) framework.ChallengeProvider
	RemoveEnrollmentStepUp(ctx context.Context, provider string, stepUp framework.VerifyInput) (framework.VerifyResult, error)
	AddFactorStepUp(ctx context.Context, provider string, stepUp framework.VerifyInput) (framework.VerifyResult, error)
	RegenerateRecoveryCodesStepUp(ctx context.Context, stepUp framework.VerifyInput) (framework.VerifyResult, []string, error)
	Devices(ctx context.Context, userID string) ([]framework.DeviceInfo, error)
	DeviceByToken(ctx context.Context, userID, token string) (framework.DeviceInfo, error)
	RevokeDevice(ctx context.Context, userID, id string) error
	RevokeDevices(ctx context.Context, userID string) (int, error)
}

var _ Framework = (*framework.Framework)(nil)

// Options configure a UI.
type Options struct {
	Framework Framework
	// Key signs links and derives CSRF values; at least 32 bytes. The host
	// derives it from the encryption key, so links work across restarts
	// and replicas.
	Key []byte
	// Now is the trusted clock; time.Now when nil.
	Now    func() time.Time
	Logger hclog.Logger
	// LinkTTL is how long a link stays valid; 10 minutes when zero.
	LinkTTL time.Duration
}

// Lifetimes of derived tokens.
const (
	// waitTTL covers a push: the framework forgets it after 5 minutes.
	waitTTL = 5 * time.Minute
	// resultTTL is how long the application has to check a result.
	resultTTL = 5 * time.Minute
	// maxForm caps a form body; the largest forms are a security key's
	// answer (at most maxCredential, form-encoded: up to three times) and
	// the enrollment's confirmation: a token, a code and the sealed
	// display (a QR PNG of at most maxSealedQR, in base64 twice, under
	// 32 KiB).
	maxForm = 3 * maxCredential
	// maxCredential caps a browser's WebAuthn answer, as the API does.
	maxCredential = 32 << 10
)

// UI serves the pages under /ui/.
type UI struct {
	fw      Framework
	sig     *signer
	now     func() time.Time
	log     hclog.Logger
	linkTTL time.Duration
	pages   map[string]*template.Template
	static  *staticFiles
	mux     *http.ServeMux
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the UI.
func New(opts Options) (*UI, error) {
	if opts.Framework == nil {
		return nil, errors.New("ui: a Framework is required")
	}
	sig, err := newSigner(opts.Key)
	if err != nil {
		return nil, err
	}
	u := &UI{fw: opts.Framework, sig: sig, now: opts.Now, log: opts.Logger, linkTTL: opts.LinkTTL}
	if u.now == nil {
		u.now = time.Now
	}
	if u.log == nil {
		u.log = hclog.NewNullLogger()
	}
	if u.linkTTL == 0 {
		u.linkTTL = 10 * time.Minute
	}
	if u.static, err = embeddedStaticFiles(); err != nil {
		return nil, err
	}
	if u.pages, err = parseTemplates(u.static); err != nil {
		return nil, err
	}
	u.routes()
	return u, nil
}

// parseTemplates parses the pages; their function "static" names a static
// file by its current URL.
func parseTemplates(static *staticFiles) (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).Funcs(template.FuncMap{"static": static.url}).ParseFS(templateFS, "templates/base.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

func (u *UI) routes() {
	m := http.NewServeMux()
	m.Handle("GET "+staticPrefix, u.static)
	m.HandleFunc("GET /ui/enroll", u.enrollPage)
	m.HandleFunc("POST /ui/enroll/begin", u.enrollBegin)
	m.HandleFunc("POST /ui/enroll/confirm", u.enrollConfirm)
	m.HandleFunc("POST /ui/enroll/send", u.enrollSend)
	m.HandleFunc("GET /ui/verify", u.verifyPage)
	m.HandleFunc("POST /ui/verify/code", u.verifyCode)
	m.HandleFunc("POST /ui/verify/recovery", u.verifyRecovery)
	m.HandleFunc("POST /ui/verify/push", u.verifyPush)
	m.HandleFunc("POST /ui/verify/key/start", u.webauthnStart)
	m.HandleFunc("POST /ui/verify/key", u.verifyWebAuthn)
	m.HandleFunc("POST /ui/verify/send", u.verifySend)
	m.HandleFunc("GET /ui/verify/wait", u.verifyWait)
	m.HandleFunc("GET /ui/verify/status", u.verifyStatus)
	m.HandleFunc("GET /ui/verify/done", u.verifyDone)
	m.HandleFunc("GET /ui/security", u.securityPage)
	m.HandleFunc("POST /ui/security/stepup", u.securityStepUp)
	m.HandleFunc("POST /ui/security/confirm", u.securityConfirm)
	m.HandleFunc("POST /ui/security/key/start", u.securityKeyStart)
	m.HandleFunc("POST /ui/security/send", u.securitySend)
	m.HandleFunc("POST /ui/security/forget", u.securityForget)
	m.HandleFunc("POST /ui/security/forget-all", u.securityForgetAll)
	m.HandleFunc("GET /ui/admin", u.adminPage)
	m.HandleFunc("POST /ui/admin/refresh", u.adminRefresh)
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.renderMessage(w, r, http.StatusNotFound, "Page not found",
			"This address does not lead anywhere. Open the link your application gave you again.")
	})
	u.mux = m
}

// csp allows this origin's stylesheet and script, images from this origin
// and inline data: PNGs (the QR codes), fetches to this origin (the push
// poll) and forms to this origin; nothing else, and no framing.
const csp = "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves everything under /ui/.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Pages carry tokens, secrets and recovery codes: never cache them.
	// Static files override this.
	h.Set("Cache-Control", "no-store")
	u.mux.ServeHTTP(w, r)
}

// LinkRequest asks for a link to a page for one user.
type LinkRequest struct {
	Page      string // PageEnroll, PageVerify or PageSecurity; PageAdmin for an admin
	User      string
	Audience  string
	Provider  string // required for enroll; for verify, optional: shown first if the user may use it
	ReturnURL string // where to send the user afterwards; optional
	Issuer    string // the API key's name, recorded in the audit log
	// Inputs prefill an enroll link's form with answers to the provider's
	// enrollment inputs (an address the application already knows);
	// checked against the provider's declared inputs. With FixInputs they
	// are shown read-only and are the only ones accepted: then every
	// required input must be given.
	Inputs    map[string]string
	FixInputs bool
}

// Link is a signed link to a page.
type Link struct {
	// URL is relative to the host's base URL: "/ui/verify?t=...".
	URL       string
	ExpiresAt time.Time
	// ID identifies the link; a verification result names it, so the
	// application can tell the result of its own link.
	ID string
}

func invalid(format string, args ...any) error {
	return &framework.Error{Code: framework.CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// NewLink checks a request and signs a link. Errors are *framework.Error.
func (u *UI) NewLink(req LinkRequest) (Link, error) {
	c := claims{Page: req.Page, Issuer: req.Issuer, Nonce: newNonce()}
	switch req.Page {
	case PageEnroll, PageVerify:
		if err := framework.ValidateUserID(req.User); err != nil {
			return Link{}, err
		}
		if err := checkAudience(req.Audience); err != nil {
			return Link{}, err
		}
		// A verify link may leave the provider out: the login decision
		// lists the user's; one named is shown first if listed.
		if req.Provider != "" || req.Page == PageEnroll {
			if err := u.checkProvider(req.Provider, req.Audience); err != nil {
				return Link{}, err
			}
		}
		if err := checkReturnURL(req.ReturnURL); err != nil {
			return Link{}, err
		}
		if err := u.checkInputs(req); err != nil {
			return Link{}, err
		}
		c.User, c.Audience, c.Provider, c.Return = req.User, req.Audience, req.Provider, req.ReturnURL
		c.Inputs, c.FixInputs = encodeInputs(req.Inputs), req.FixInputs
	case PageSecurity:
		if err := framework.ValidateUserID(req.User); err != nil {
			return Link{}, err
		}
		if err := checkAudience(req.Audience); err != nil {
			return Link{}, err
		}
		if req.Provider != "" || len(req.Inputs) > 0 || req.FixInputs {
			return Link{}, invalid("a security link takes no provider or inputs: the page lists the user's")
		}
		if err := checkReturnURL(req.ReturnURL); err != nil {
			return Link{}, err
		}
		c.User, c.Audience, c.Return = req.User, req.Audience, req.ReturnURL
	case PageAdmin:
		if req.User != "" || req.Provider != "" || req.Audience != "" || req.ReturnURL != "" || len(req.Inputs) > 0 || req.FixInputs {
			return Link{}, invalid("an admin link takes no user, provider, audience, return_url or inputs")
		}
	default:
		return Link{}, invalid("page must be %q, %q or %q", PageEnroll, PageVerify, PageSecurity)
	}
	exp := u.now().Add(u.linkTTL).Truncate(time.Second)
	c.Exp = exp.Unix()
	return Link{URL: "/ui/" + req.Page + "?t=" + u.sig.token(c), ExpiresAt: exp.UTC(), ID: c.Nonce}, nil
}

// checkInputs checks an enroll link's inputs against the provider's
// declared ones, as enrollment will: a link that could only fail later is
// refused now, with the input named.
func (u *UI) checkInputs(req LinkRequest) error {
	if len(req.Inputs) == 0 && !req.FixInputs {
		return nil
	}
	if req.Page != PageEnroll {
		return invalid("inputs are for enroll links only")
	}
	if req.FixInputs && len(req.Inputs) == 0 {
		return invalid("fix_inputs needs inputs")
	}
	if len(u.fw.EnrollInputs(req.Provider)) == 0 {
		return invalid("provider %q asks no enrollment inputs", req.Provider)
	}
	return u.fw.CheckEnrollInputs(req.Provider, req.Inputs, !req.FixInputs)
}

func checkAudience(audience string) error {
	if audience != string(framework.AudienceStaff) && audience != string(framework.AudienceClient) {
		return invalid("audience must be %q or %q", framework.AudienceStaff, framework.AudienceClient)
	}
	return nil
}

func (u *UI) checkProvider(name, audience string) error {
	if name == "" {
		return invalid("provider is required for an enroll link")
	}
	if name == framework.RecoveryProvider {
		return invalid("recovery codes are offered on every verify page; ask for the user's provider")
	}
	for _, p := range u.fw.Providers() {
		if p.Name != name {
			continue
		}
		if (audience == string(framework.AudienceStaff) && !p.Staff) || (audience == string(framework.AudienceClient) && !p.Clients) {
			return &framework.Error{Code: framework.CodeAudienceNotAllowed, Message: fmt.Sprintf("provider %q is not enabled for %s", name, audience)}
		}
		return nil
	}
	return &framework.Error{Code: framework.CodeUnknownProvider, Message: fmt.Sprintf("no active provider named %q", name)}
}

// checkReturnURL accepts a path on this origin ("/account/security") or an
// absolute http or https URL. Only holders of an API key can put one in a
// link (it is signed), so this is not an open redirect; it keeps out
// javascript: and other schemes.
func checkReturnURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 1024 {
		return invalid("return_url is longer than 1024 characters")
	}
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, "\\\x00\r\n\t") {
		return invalid("return_url is not a valid URL")
	}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//"):
		return nil
	case (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil:
		return nil
	}
	return invalid("return_url must be a path starting with / or an http(s) URL")
}

// Result is a verification's outcome, as CheckResult reads it from the
// token the UI appended to the return URL.
type Result struct {
	LinkID   string
	User     string
	Audience string
	Provider string // the provider the link was for; "" when it named none
	// Method is how the outcome was reached: the provider the user
	// answered, or "recovery" for a recovery code; for an allow without a
	// second factor, the login policy's why: "remembered_device" (this
	// browser is remembered), "not_required" (the user has no factor and
	// the audience requires none) or "grace_login" (one must be set up,
	// but a grace login was left).
	Method string
	// Unprompted, with an allow, says the user answered nothing: the
	// provider (Method) let them in on its own (a push provider's bypass).
	Unprompted bool
	Outcome    string // "allow" or "deny"
	Reason     string
	At         time.Time
	ExpiresAt  time.Time
}

// ErrResultInvalid is CheckResult's answer for a forged or malformed result,
// ErrResultExpired for one that is too old.
var (
	ErrResultInvalid = errors.New("not a valid verification result")
	ErrResultExpired = errors.New("the verification result has expired")
)

// CheckResult checks a result token ("twofactor_result" on the return URL).
func (u *UI) CheckResult(tok string) (Result, error) {
	c, err := u.sig.parse(tok, u.now())
	switch {
	case errors.Is(err, errTokenExpired):
		return Result{}, ErrResultExpired
	case err != nil || c.Kind != kindResult:
		return Result{}, ErrResultInvalid
	}
	return Result{LinkID: c.Nonce, User: c.User, Audience: c.Audience, Provider: c.Provider, Method: c.Method, Unprompted: c.Unprompted,
		Outcome: c.Outcome, Reason: c.Reason, At: time.Unix(c.At, 0).UTC(), ExpiresAt: time.Unix(c.Exp, 0).UTC()}, nil
}
