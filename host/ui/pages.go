package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"

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
	Push          bool // the provider is Duo: push and passcode
	Error         string
	Notice        string
	ReturnURL     string

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

	// Verification.
	NoFactor     bool // the user has no active enrollment in the provider
	RecoveryOpen bool
	PollURL      string
	WaitURL      string
	VerifyURL    string
	Allowed      bool
	UsedRecovery bool
	Icon         string // "ok", "error", "wait", "lock"
	CheckedAt    string
	AdminIssuer  string
	ProviderRows []providerRow
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

// submit checks a form: its link token, then its CSRF value. A form posted
// from another site is refused before anything else.
func (u *UI) submit(w http.ResponseWriter, r *http.Request, page string) (claims, string, bool) {
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
	if err == nil && (c.Page != page || c.Kind != kindLink) {
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
	return &view{Token: tok, CSRF: u.sig.csrfValue(tok), Provider: c.Provider, ProviderLabel: providerLabel(c.Provider),
		Push: c.Provider == "duo", ReturnURL: c.Return}
}

func providerLabel(name string) string {
	switch name {
	case "totp":
		return "authenticator app"
	case "duo":
		return "Duo Mobile"
	case "":
		return ""
	}
	return strings.ToUpper(name)
}

func enrollSteps(current int, push bool) []step {
	labels := []string{"Get the app", "Scan", "Backup codes"}
	if push {
		labels[1] = "Activate"
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
	var fe *framework.Error
	if !errors.As(err, &fe) {
		fe = &framework.Error{Code: framework.CodeInternal}
	}
	switch fe.Code {
	case framework.CodeLockedOut:
		return "Too many wrong attempts. For your security, try again in " + humanDuration(fe.RetryAfter) + "."
	case framework.CodeProviderUnavailable:
		return "We couldn't reach the verification service. Please try again in a moment."
	case framework.CodeAudienceNotAllowed, framework.CodeUnknownProvider:
		return "This sign-in method is not available for your account any more."
	case framework.CodeConflict:
		return "Something changed while we were checking. Please try again."
	}
	u.log.Error("ui: request failed", "error", err)
	return "Something went wrong on our side. Please try again in a moment."
}

func humanDuration(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "a second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	case d < 2*time.Minute:
		return "a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	case d < 2*time.Hour:
		return "an hour"
	}
	return fmt.Sprintf("%d hours", int((d+time.Hour-1)/time.Hour))
}

// reasonText explains a denial to the user.
func reasonText(reason, message string) string {
	switch sdk.Reason(reason) {
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

// --- enrollment ------------------------------------------------------------

func (u *UI) enrollPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageEnroll, kindLink)
	if !ok {
		return
	}
	v := u.base(c, tok)
	on, err := u.active(u.ctx(r, c), c.User, c.Provider)
	if err != nil {
		u.renderMessage(w, r, http.StatusInternalServerError, "Something went wrong", u.frameworkMessage(err))
		return
	}
	if on {
		u.enrolled(w, r, c, tok, nil, true)
		return
	}
	v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v.Push)
	if v.Push {
		v.Lead = "Protect your account with Duo Mobile: at each sign-in you approve a request on your phone."
	} else {
		v.Lead = "Protect your account with a 6-digit code from an app on your phone, asked for at each sign-in."
	}
	u.render(w, http.StatusOK, "enroll_start", v)
}

func (u *UI) enrollBegin(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageEnroll)
	if !ok {
		return
	}
	ctx := u.ctx(r, c)
	res, err := u.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: c.User, Provider: c.Provider, Audience: framework.Audience(c.Audience)})
	if framework.CodeOf(err) == framework.CodeAlreadyEnrolled {
		u.enrolled(w, r, c, tok, nil, true)
		return
	}
	if err != nil {
		v := u.base(c, tok)
		v.Title, v.Steps, v.Error = "Set up two-step verification", enrollSteps(1, v.Push), u.frameworkMessage(err)
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	}
	if res.Status == framework.StatusActive {
		// Nothing to confirm (Duo already knows the user).
		u.enrolled(w, r, c, tok, nil, false)
		return
	}
	v := u.setupView(c, tok)
	d := res.Display
	if len(d.QRPNG) > 0 {
		v.setQR(d.QRPNG, "QR code to scan with your authenticator app")
	}
	if d.OTPAuthURL != "" {
		if key, err := otp.NewKeyFromURL(d.OTPAuthURL); err == nil {
			v.Secret, v.Issuer, v.Account = groupSecret(key.Secret()), key.Issuer(), key.AccountName()
			v.Digits = key.Digits().Length()
		}
	}
	if d.ActivationCode != "" || d.BarcodeURL != "" {
		if png := activationQR(d); png != nil {
			v.setQR(png, "Activation barcode to scan with Duo Mobile")
		}
		v.ActivationURL = d.ActivationURL
	}
	if v.QR == "" && v.Secret == "" && v.ActivationURL == "" {
		// A provider of its own kind: its words are all there is.
		v.Instructions = d.Instructions
	}
	u.render(w, http.StatusOK, "enroll_setup", v)
}

// setQR shows a PNG inline, at its own size (a QR code scaled by the
// browser gets uneven modules); one that is not a PNG is not shown.
func (v *view) setQR(b []byte, alt string) {
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != cfg.Height || cfg.Width > 512 {
		return
	}
	v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	v.QRAlt, v.QRSize = alt, cfg.Width
}

func (u *UI) setupView(c claims, tok string) *view {
	v := u.base(c, tok)
	v.Steps, v.Digits = enrollSteps(2, v.Push), 6
	if v.Push {
		v.Title = "Activate Duo Mobile"
		v.Lead = "Open Duo Mobile, tap + (Add) and scan this barcode. Then come back and continue."
	} else {
		v.Title = "Scan the QR code"
		v.Lead = "Open your authenticator app, add an account and scan this code. Then enter the 6-digit code the app shows."
	}
	return v
}

// groupSecret writes a base32 secret in groups of four for typing.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// activationQR draws Duo's activation barcode here, so the page needs no
// image from Duo: the same value Duo's barcode URL encodes.
func activationQR(d sdk.Display) []byte {
	value := d.ActivationCode
	if bu, err := url.Parse(d.BarcodeURL); err == nil && bu.Query().Get("value") != "" {
		value = bu.Query().Get("value")
	}
	if value == "" {
		return nil
	}
	code, err := qr.Encode(value, qr.M, qr.Auto)
	if err != nil {
		return nil
	}
	// A whole number of pixels per module keeps the modules even.
	n := code.Bounds().Dx()
	size := max(n, 224/n*n)
	if code, err = barcode.Scale(code, size, size); err != nil {
		return nil
	}
	var b bytes.Buffer
	if err := png.Encode(&b, code); err != nil {
		return nil
	}
	return b.Bytes()
}

func (u *UI) enrollConfirm(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageEnroll)
	if !ok {
		return
	}
	code := r.PostForm.Get("code")
	if len(code) > 64 {
		code = code[:64]
	}
	res, err := u.fw.ConfirmEnrollment(u.ctx(r, c), c.User, c.Provider, code)
	switch framework.CodeOf(err) {
	case "":
	case framework.CodeAlreadyEnrolled:
		u.enrolled(w, r, c, tok, nil, true)
		return
	case framework.CodeNotEnrolled:
		v := u.base(c, tok)
		v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v.Push)
		v.Error = "Your setup was not started or was reset. Start again."
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	default:
		v := u.setupView(c, tok)
		v.Title, v.Lead, v.Error = "Confirm your setup", "", u.frameworkMessage(err)
		u.render(w, http.StatusOK, "enroll_setup", v)
		return
	}
	if res.Status == framework.StatusActive {
		u.enrolled(w, r, c, tok, res.RecoveryCodes, false)
		return
	}
	v := u.setupView(c, tok)
	v.Title, v.Lead = "Confirm your setup", ""
	switch res.Reason {
	case sdk.ReasonWaiting:
		v.Title = "Waiting for activation"
		v.Notice = "Duo Mobile has not been activated yet. Finish the activation on your phone, then check again."
	case sdk.ReasonExpired, sdk.ReasonInvalidState:
		v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v.Push)
		v.Error = "This setup expired before it was confirmed. Start again to get a new code."
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	case sdk.ReasonReplayed:
		v.Error = "That code was already used. Wait for the next code in your app, then enter it."
	default:
		v.Error = "That code didn't match. Enter the current code from your app; if it still fails, scan a new QR code."
	}
	u.render(w, http.StatusOK, "enroll_setup", v)
}

// enrolled shows the last step: the recovery codes when this was the first
// factor, else how many are left.
func (u *UI) enrolled(w http.ResponseWriter, r *http.Request, c claims, tok string, codes []string, already bool) {
	ctx := u.ctx(r, c)
	v := u.base(c, tok)
	v.Steps, v.AlreadyEnabled, v.Icon = enrollSteps(3, v.Push), already, "ok"
	if !already && len(codes) == 0 {
		// A factor enrolled without a confirmation step (Duo knew the user)
		// gets recovery codes as a confirmed one does: if there are none.
		if n, err := u.fw.RecoveryCodesLeft(ctx, c.User); err == nil && n == 0 {
			if fresh, err := u.fw.RegenerateRecoveryCodes(ctx, c.User); err == nil {
				codes = fresh
			}
		}
	}
	v.RecoveryCodes = codes
	if len(codes) == 0 {
		n, err := u.fw.RecoveryCodesLeft(ctx, c.User)
		if err != nil {
			u.renderMessage(w, r, http.StatusInternalServerError, "Something went wrong", u.frameworkMessage(err))
			return
		}
		v.CodesLeft = n
	}
	switch {
	case already:
		v.Title, v.Steps = "Already set up", nil
		v.Lead = fmt.Sprintf("Two-step verification with your %s is already on for this account. To set it up again, for example on a new phone, ask support to reset it.", v.ProviderLabel)
	case len(codes) > 0:
		v.Title = "Save your backup codes"
		v.Lead = "If you lose your phone, each of these codes lets you sign in once. Keep them somewhere safe, such as a password manager. They won't be shown again."
	default:
		v.Title = "You're all set"
		v.Lead = fmt.Sprintf("Two-step verification with your %s is on.", v.ProviderLabel)
	}
	u.render(w, http.StatusOK, "enroll_done", v)
}

// --- verification ----------------------------------------------------------

func (u *UI) verifyView(c claims, tok string) *view {
	v := u.base(c, tok)
	v.Title = "Two-step verification"
	if v.Push {
		v.Lead = "Approve a login request in Duo Mobile, or enter a passcode."
	} else {
		v.Lead = "Enter the 6-digit code from your authenticator app."
	}
	return v
}

func (u *UI) verifyPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageVerify, kindLink)
	if !ok {
		return
	}
	v := u.verifyView(c, tok)
	on, err := u.active(u.ctx(r, c), c.User, c.Provider)
	if err != nil {
		v.Error = u.frameworkMessage(err)
	} else if !on {
		v.NoFactor, v.RecoveryOpen = true, true
		v.Lead = fmt.Sprintf("Two-step verification with your %s isn't set up for this account. If you have a backup code, you can use it below.", v.ProviderLabel)
	}
	u.render(w, http.StatusOK, "verify", v)
}

func (u *UI) verifyCode(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "code")
}

func (u *UI) verifyRecovery(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "recovery")
}

func (u *UI) verifyPush(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "push")
}

// verifyWith answers a verify form: a code, a recovery code or a push.
func (u *UI) verifyWith(w http.ResponseWriter, r *http.Request, how string) {
	c, tok, ok := u.submit(w, r, PageVerify)
	if !ok {
		return
	}
	in := framework.VerifyInput{UserID: c.User, Provider: c.Provider, Audience: framework.Audience(c.Audience), ClientIP: clientIP(r)}
	code := r.PostForm.Get("code")
	if len(code) > 64 {
		code = code[:64]
	}
	switch how {
	case "code":
		in.Code = code
		if c.Provider == "duo" {
			in.Factor = "passcode"
		}
	case "recovery":
		in.Provider, in.Code = framework.RecoveryProvider, code
	case "push":
		in.Factor = "push"
	}
	res, err := u.fw.Verify(u.ctx(r, c), in)
	v := u.verifyView(c, tok)
	v.RecoveryOpen = how == "recovery"
	if err != nil {
		v.Error = u.frameworkMessage(err)
		u.render(w, http.StatusOK, "verify", v)
		return
	}
	switch res.Outcome {
	case sdk.Allow:
		u.redirectDone(w, r, c, res, in.Provider)
	case sdk.Pending:
		if res.TxID == "" {
			v.Error = u.frameworkMessage(errors.New("pending without a transaction"))
			u.render(w, http.StatusOK, "verify", v)
			return
		}
		wc := c.derive(kindWait, u.now(), waitTTL)
		wc.TxID = res.TxID
		http.Redirect(w, r, "/ui/verify/wait?t="+u.sig.token(wc), http.StatusSeeOther)
	default:
		switch {
		case how == "recovery" && res.Reason == sdk.ReasonInvalidCode:
			v.Error = "That backup code isn't valid or was already used."
		case how == "push":
			// A push that Duo refused at once (policy, no device) is final
			// for this attempt: say why on the result page.
			u.redirectDone(w, r, c, res, in.Provider)
			return
		default:
			v.Error = reasonText(string(res.Reason), res.Message)
		}
		u.render(w, http.StatusOK, "verify", v)
	}
}

// redirectDone sends the browser to the result page of a decision.
func (u *UI) redirectDone(w http.ResponseWriter, r *http.Request, c claims, res framework.VerifyResult, method string) {
	http.Redirect(w, r, u.doneURL(c, res, method), http.StatusSeeOther)
}

func (u *UI) doneURL(c claims, res framework.VerifyResult, method string) string {
	now := u.now()
	rc := c.derive(kindResult, now, resultTTL)
	rc.Outcome, rc.Reason, rc.At, rc.Method = string(res.Outcome), string(res.Reason), now.Unix(), method
	if res.Reason == sdk.ReasonDeniedByPolicy {
		rc.Message = truncate(res.Message, 200)
	}
	return "/ui/verify/done?t=" + u.sig.token(rc)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// poll asks once whether a push was answered: "" while pending, else the
// result page to go to.
func (u *UI) poll(r *http.Request, c claims) (string, error) {
	res, err := u.fw.PollVerification(u.ctx(r, c), c.User, c.TxID)
	if err != nil {
		return "", err
	}
	if res.Outcome == sdk.Pending {
		return "", nil
	}
	return u.doneURL(c, res, c.Provider), nil
}

func (u *UI) verifyWait(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageVerify, kindWait)
	if !ok {
		return
	}
	next, err := u.poll(r, c)
	if err == nil && next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	link := c.link()
	v := u.verifyView(link, u.sig.token(link))
	if err != nil {
		if framework.CodeOf(err) == framework.CodeNotFound {
			v.Error = "This login request is no longer waiting. Please try again."
		} else {
			v.Error = u.frameworkMessage(err)
		}
		u.render(w, http.StatusOK, "verify", v)
		return
	}
	v.Title = "Check your phone"
	v.Lead = "We sent a login request to Duo Mobile. Approve it to continue."
	v.Icon = "wait"
	v.WaitURL = "/ui/verify/wait?t=" + tok
	v.PollURL = "/ui/verify/status?t=" + tok
	v.VerifyURL = "/ui/verify?t=" + v.Token
	u.render(w, http.StatusOK, "wait", v)
}

// verifyStatus is the waiting page script's poll: JSON, "pending" or
// "done" with the page to go to.
func (u *UI) verifyStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	tok := r.URL.Query().Get("t")
	c, err := u.sig.parse(tok, u.now())
	if err == nil && (c.Page != PageVerify || c.Kind != kindWait) {
		err = errTokenInvalid
	}
	if err != nil {
		// The waiting page explains it.
		writeJSON(http.StatusForbidden, map[string]string{"status": "error", "next": "/ui/verify/wait?t=" + url.QueryEscape(tok)})
		return
	}
	next, err := u.poll(r, c)
	switch {
	case err != nil:
		writeJSON(http.StatusOK, map[string]string{"status": "error", "next": "/ui/verify/wait?t=" + tok})
	case next != "":
		writeJSON(http.StatusOK, map[string]string{"status": "done", "next": next})
	default:
		writeJSON(http.StatusOK, map[string]string{"status": "pending"})
	}
}

func (u *UI) verifyDone(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageVerify, kindResult)
	if !ok {
		return
	}
	link := c.link()
	v := u.base(link, "")
	v.Allowed, v.UsedRecovery = c.Outcome == string(sdk.Allow), c.Method == framework.RecoveryProvider
	if v.Allowed {
		v.Title, v.Icon = "You're verified", "ok"
		v.Lead = "Thanks, that's you."
		if v.UsedRecovery {
			v.Lead = "You signed in with a backup code; it can't be used again. If you lost your phone, set up two-step verification again soon."
		}
		if c.Return != "" {
			v.ReturnURL = withResult(c.Return, tok)
		} else {
			v.Notice = "You can close this page and go back to the application."
		}
	} else {
		v.Title, v.Icon, v.Lead = "Not verified", "error", reasonText(c.Reason, c.Message)
		v.ReturnURL = ""
		if u.now().Unix() < link.Exp {
			v.VerifyURL = "/ui/verify?t=" + u.sig.token(link)
		} else {
			v.Notice = "Go back to the application to try again."
		}
	}
	u.render(w, http.StatusOK, "done", v)
}

// withResult appends the signed result to the application's return URL.
func withResult(ret, tok string) string {
	base, frag, _ := strings.Cut(ret, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	out := base + sep + "twofactor_result=" + tok
	if frag != "" {
		out += "#" + frag
	}
	return out
}

// --- admin -----------------------------------------------------------------

type providerRow struct {
	Name        string
	Version     string
	Audiences   []string
	Health      string
	HealthClass string
	Running     bool
	ClockOffset string
	ClockClass  string
	Restarts    int
	Notes       []string
}

func (u *UI) adminPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageAdmin, kindLink)
	if !ok {
		return
	}
	v := u.base(c, tok)
	v.Title, v.Wide, v.AdminIssuer = "Providers", true, c.Issuer
	v.CheckedAt = u.now().UTC().Format("2 Jan 2006 15:04:05 MST")
	healthy := 0
	for _, p := range u.fw.Providers() {
		row := providerRow{Name: p.Name, Version: p.Version, Health: string(p.Health), Running: p.Running, Restarts: p.Restarts, ClockOffset: "—"}
		if p.Staff {
			row.Audiences = append(row.Audiences, "staff")
		}
		if p.Clients {
			row.Audiences = append(row.Audiences, "clients")
		}
		switch {
		case !p.Running:
			row.Health, row.HealthClass = "not running", "bad"
		case p.Health == sdk.Healthy:
			row.HealthClass = "good"
			healthy++
		case p.Health == sdk.Degraded:
			row.HealthClass = "warn"
		case p.Health == "":
			row.Health, row.HealthClass = "unknown", "bad"
		default:
			row.HealthClass = "bad"
		}
		for _, d := range p.Diagnostics {
			if d.Code == "clock_offset" {
				row.ClockOffset, row.ClockClass = d.Value, "good"
				if off, err := time.ParseDuration(d.Value); err == nil && off.Abs() > 30*time.Second {
					row.ClockClass = "warn"
				}
				if p.Health == sdk.Healthy {
					continue
				}
			}
			row.Notes = append(row.Notes, d.Message)
		}
		if p.LastError != "" {
			row.Notes = append(row.Notes, "Last error: "+p.LastError)
		}
		v.ProviderRows = append(v.ProviderRows, row)
	}
	v.Lead = fmt.Sprintf("%d of %d providers healthy.", healthy, len(v.ProviderRows))
	u.render(w, http.StatusOK, "admin", v)
}

func (u *UI) adminRefresh(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageAdmin)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx(r, c), 30*time.Second)
	defer cancel()
	u.fw.Refresh(ctx)
	http.Redirect(w, r, "/ui/admin?t="+tok, http.StatusSeeOther)
}
