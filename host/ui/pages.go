package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// step is one entry of an enrollment's progress bar.
type step struct {
	N     int
	Label string
	State string // "done", "current" or ""
}

// view is what every template gets; each page uses its own fields.
type view struct {
	Title string
	Lead  string
	Wide  bool
	Steps []step
	// Forms: the token and its CSRF value.
	Token string
	CSRF  string

	Provider      string
	ProviderLabel string
	Push          bool      // the provider pushes requests to a phone (and may take a passcode)
	WebAuthn      bool      // the browser answers the provider: security keys and passkeys
	Prepare       string    // the provider's first setup step (sdk.Texts.Prepare)
	texts         sdk.Texts // what the provider says of itself, or nothing (see texts.go)
	// Public is what the page's script hands the browser (WebAuthn
	// creation options, JSON).
	Public    string
	Error     string
	Notice    string
	ReturnURL string
	// EnrollPortalURL is where the provider's backend lets the user
	// enroll, when it wants the user to enroll first.
	EnrollPortalURL string

	// Enrollment.
	QR             template.URL
	QRAlt          string
	QRSize         int    // the image's width and height, shown unscaled
	Secret         string // grouped by four
	Issuer         string
	Account        string
	Digits         int
	ActivationURL  string
	Instructions   string
	RecoveryCodes  []string
	CodesLeft      int
	AlreadyEnabled bool
	Inputs         []inputField // what the provider's enrollment asks for
	RestartURL     string       // the start page again: send a new code, change an input

	// Verification.
	Code      bool // the provider takes a typed code (a passcode, with Push)
	CodeLabel string
	CodeField codeField // the code field: setup's confirmation, sign-in's code or passcode
	Sends     bool      // the provider sends its code: "Send code" first
	Sent      bool      // a code was sent for this form: its field and "Resend"
	ResendIn  int       // seconds until "Resend" is accepted
	// SendFactor is a push provider's factor whose codes it sends on
	// request (texted passcodes): a button asks for them, and a passcode
	// typed after answers their challenge.
	SendFactor   string
	Recovery     bool // offer a recovery code
	RecoveryOpen bool
	RememberDays int  // offer "remember this device" for so many days
	Remember     bool // the box was ticked
	Others       []method
	Methods      []method // the enroll page's choices
	ChooseURL    string   // back to the choices of an enrollment the login page asked for
	InLogin      bool     // an enrollment the login page asked for
	RetryURL     string
	PollURL      string
	WaitURL      string
	VerifyURL    string
	Allowed      bool
	UsedRecovery bool
	Icon         string // "ok", "error", "wait", "lock"
	CheckedAt    string
	AdminIssuer  string
	ProviderRows []providerRow

	// Enrollment: the otpauth:// URL for an "open in app" link on a
	// phone, and the sealed display a wrong code shows again.
	OTPAuthURL template.URL
	Display    string

	// Lockout: the lead's countdown, rendered and then run by a script.
	Countdown   string
	CountdownMS int64

	// Security page.
	Factors       []factorRow
	Devices       []deviceRow
	HasFactor     bool
	AddStepUp     bool // adding a factor asks for a step-up (security page)
	Action        string
	ConfirmLabel  string // the step-up's button: what it confirms
	Danger        bool
	StepUpMethods []stepUpMethod // those answered with a typed code
	SendMethods   []stepUpMethod // those whose code is sent first
	KeyForm       *keyForm       // a security key's form: sign-in, step-up
	SecurityURL   string
}

var funcs = template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}

func (u *UI) render(w http.ResponseWriter, status int, name string, v *view) {
	t, ok := u.pages[name]
	if !ok {
		panic("ui: no template " + name)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "base", v); err != nil {
		u.log.Error("ui: render", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// renderMessage shows a page with a heading and one paragraph.
func (u *UI) renderMessage(w http.ResponseWriter, _ *http.Request, status int, title, lead string) {
	icon := "error"
	if status == http.StatusForbidden {
		icon = "lock"
	}
	u.render(w, status, "message", &view{Title: title, Lead: lead, Icon: icon})
}

// tokenError explains a link that cannot be used.
func (u *UI) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errTokenExpired):
		u.renderMessage(w, r, http.StatusForbidden, "This link has expired",
			"For your security, links to this page work for a few minutes only. Go back to the application and start again to get a new one.")
	case errors.Is(err, errTokenMissing):
		u.renderMessage(w, r, http.StatusForbidden, "A link is needed",
			"This page opens from a link your application gives you. Go back to the application and start again.")
	default:
		u.renderMessage(w, r, http.StatusForbidden, "This link is not valid",
			"The link is incomplete or was changed. Go back to the application and start again to get a new one.")
	}
}

// open checks the token of a page opened with GET.
func (u *UI) open(w http.ResponseWriter, r *http.Request, page, kind string) (claims, string, bool) {
	tok := r.URL.Query().Get("t")
	c, err := u.sig.parse(tok, u.now())
	if err == nil && (c.Page != page || c.Kind != kind) {
		err = errTokenInvalid
	}
	if err != nil {
		u.tokenError(w, r, err)
		return claims{}, "", false
	}
	return c, tok, true
}

// submit checks a form: its token (of this page and kind), then its CSRF
// value. A form posted from another site is refused before anything else.
func (u *UI) submit(w http.ResponseWriter, r *http.Request, page, kind string) (claims, string, bool) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		u.renderMessage(w, r, http.StatusForbidden, "This form came from another site",
			"For your security, this form can only be sent from this page. Open the link your application gave you again.")
		return claims{}, "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		u.renderMessage(w, r, http.StatusBadRequest, "Something went wrong", "The form could not be read. Go back and try again.")
		return claims{}, "", false
	}
	tok := r.PostForm.Get("t")
	c, err := u.sig.parse(tok, u.now())
	if err == nil && (c.Page != page || c.Kind != kind) {
		err = errTokenInvalid
	}
	if err != nil {
		u.tokenError(w, r, err)
		return claims{}, "", false
	}
	if !u.sig.checkCSRF(tok, r.PostForm.Get("csrf")) {
		u.renderMessage(w, r, http.StatusForbidden, "This form could not be checked",
			"The page's security check is missing or wrong. Reload the page from your application's link and try again.")
		return claims{}, "", false
	}
	return c, tok, true
}

// ctx is a request's context with the audit log's actor: the UI, on
// behalf of the API key that issued the link.
func (u *UI) ctx(r *http.Request, c claims) context.Context {
	actor := "ui"
	if c.Issuer != "" {
		actor = "ui:" + c.Issuer
	}
	return framework.WithActor(r.Context(), actor)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// base fills what every page of a link shows.
func (u *UI) base(c claims, tok string) *view {
	v := &view{Token: tok, CSRF: u.sig.csrfValue(tok), Provider: c.Provider, ProviderLabel: u.providerLabel(c.Provider),
		Push: u.pushes(c.Provider), WebAuthn: u.browserKey(c.Provider), ReturnURL: c.Return}
	if c.Provider != "" {
		v.texts = u.fw.Texts(c.Provider)
	}
	if c.Then == PageSecurity {
		// An enrollment the security page offered: back to it, with the
		// security link's expiry (LinkExp in a link signed after a
		// step-up, whose own expiry is its own).
		exp := c.Exp
		if c.LinkExp != 0 {
			exp = c.LinkExp
		}
		v.ReturnURL = "/ui/security?t=" + u.sig.token(claims{Page: PageSecurity, User: c.User, Audience: c.Audience,
			Return: c.Return, Issuer: c.Issuer, Nonce: c.Nonce, Exp: exp})
	}
	if c.Page == PageEnroll && c.Provider != "" && !v.WebAuthn { // a key's label has a field of its own
		v.Inputs = inputFields(u.fw.EnrollInputs(c.Provider), c.inputs(), c.FixInputs)
	}
	if c.Then == PageVerify {
		// An enrollment the login page asked for: once done, back to the
		// login page (which decides again: now with the new factor), not
		// to the application, which would get no result.
		l := claims{Page: PageVerify, User: c.User, Audience: c.Audience, Provider: c.Provider, Return: c.Return,
			Issuer: c.Issuer, Nonce: c.Nonce, Exp: c.Exp}
		v.InLogin, v.ReturnURL = true, "/ui/verify?t="+u.sig.token(l)
		if len(decodeProviders(c.Providers)) > 1 {
			v.ChooseURL = "/ui/verify?t=" + u.sig.token(l.form(c.decision))
		}
	}
	return v
}

func enrollSteps(current int, v *view) []step {
	labels := []string{"Get the app", "Scan", "Backup codes"}
	switch {
	case v.Push:
		labels[1] = "Activate"
	case v.WebAuthn:
		labels[0], labels[1] = "Your key", "Register"
	case len(v.Inputs) > 0:
		labels[0], labels[1] = "Your details", "Confirm"
	}
	out := make([]step, len(labels))
	for i, l := range labels {
		out[i] = step{N: i + 1, Label: l}
		switch {
		case i+1 < current:
			out[i].State = "done"
		case i+1 == current:
			out[i].State = "current"
		}
	}
	return out
}

// frameworkMessage explains a framework error to an end user. The
// framework's own message is written for developers; it goes to the log.
func (u *UI) frameworkMessage(err error) string {
	fe := framework.ErrorOf(err)
	switch fe.Code {
	case framework.CodeLockedOut:
		if fe.RetryAfter > maxRetryShown {
			return "Too many wrong attempts: for your security, this account is locked. Use a backup code, or ask support to unlock it."
		}
		return "Too many wrong attempts. For your security, try again in " + humanDuration(fe.RetryAfter) + "."
	case framework.CodeProviderUnavailable, framework.CodeProviderTimeout:
		return "We couldn't reach the verification service. Please try again in a moment."
	case framework.CodeStoreUnavailable:
		u.log.Error("ui: store unavailable", "error", err)
		return "We can't check sign-ins right now. Please try again in a moment."
	case framework.CodeAudienceNotAllowed, framework.CodeUnknownProvider:
		return "This sign-in method is not available for your account any more."
	case framework.CodeConflict:
		return "Something changed while we were checking. Please try again."
	}
	u.log.Error("ui: request failed", "error", err)
	return "Something went wrong on our side. Please try again in a moment."
}

// frameworkStatus is the HTTP status of a page that failed with err: 503
// when the store or a provider is unavailable (a retry may work), else
// 500.
func frameworkStatus(err error) int {
	switch framework.CodeOf(err) {
	case framework.CodeStoreUnavailable, framework.CodeProviderUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// humanDuration says how long to wait, rounded up: telling a user to
// come back sooner than the lock ends would only lock them out again.
func humanDuration(d time.Duration) string {
	ceil := func(unit time.Duration) int { return int((d + unit - 1) / unit) }
	switch s, m, h := ceil(time.Second), ceil(time.Minute), ceil(time.Hour); {
	case s <= 1:
		return "a second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s == 60:
		return "a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	case m == 60:
		return "an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d days", ceil(24*time.Hour))
}

// maxRetryShown: a lockout longer than this is the one only an admin or a
// recovery code ends (100 years, in the framework); it gets no countdown.
const maxRetryShown = 30 * 24 * time.Hour

// reasonText explains a denial to the user.
func reasonText(reason, message string) string {
	switch sdk.Reason(reason) {
	// A security key provider's reasons, by value: the UI knows no
	// provider's package.
	case "x-unknown_credential":
		return "That security key isn't registered for your account. Use a key you added, or a backup code."
	case "x-cloned_authenticator":
		return "This security key can't be trusted: its use counter went backwards, as a copied key's would. Use another key or a backup code, and tell support."
	case "x-user_verification_required":
		return "Your key must also check your PIN, fingerprint or face. Try again and confirm it when asked."
	case "x-wrong_origin", "x-wrong_rp_id":
		return "This answer didn't come from this site's page. Open the site from its own address and try again."
	case "x-bad_signature":
		return "Your security key's answer could not be verified. Please try again."
	case sdk.ReasonInvalidCode, framework.ReasonNotEnrolled:
		// Worded alike on purpose: what a person at the keyboard sees must
		// not tell an unenrolled user from a wrong code.
		return "That code isn't right. Enter the current code from your app."
	case sdk.ReasonReplayed:
		return "That code was already used. Wait for the next code in your app, then enter it."
	case sdk.ReasonClockSkewSuspected:
		return "That code is from another time: your phone's clock seems to be off. Set its date and time to automatic, then try again."
	case sdk.ReasonExpired:
		return "The request expired before it was answered. Please try again."
	case sdk.ReasonDeniedByUser:
		return "The login request was denied on your phone."
	case sdk.ReasonFraud:
		return "You reported this login request as not yours. If you did not try to sign in, tell your administrator."
	case sdk.ReasonTimeout:
		return "The login request was not answered in time."
	case sdk.ReasonUnavailable:
		return "We couldn't reach the verification service. Please try again in a moment."
	case sdk.ReasonLockedOut:
		return "Your account is locked for now after too many attempts."
	case sdk.ReasonInvalidState:
		return "Your two-step verification setup can't be used. Contact support to reset it."
	case sdk.ReasonEnrollmentRequired:
		return "You need to set up your second factor with the verification service first, then try again."
	case sdk.ReasonBackendRefused:
		return "The verification service refused this request. Please try again later or contact support."
	case sdk.ReasonDeniedByPolicy:
		if message != "" {
			return "Your organization's policy refused this login: " + message
		}
		return "Your organization's policy refused this login."
	}
	return "Verification failed. Please try again."
}

// active reports whether the user has a confirmed enrollment in provider.
func (u *UI) active(ctx context.Context, user, provider string) (bool, error) {
	list, err := u.fw.Enrollments(ctx, user)
	if err != nil {
		return false, err
	}
	for _, e := range list {
		if e.Provider == provider && e.Status == framework.StatusActive {
			return true, nil
		}
	}
	return false, nil
}
