package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Enrollment pages: start, scan or activate, confirm, recovery codes.

// Setup links the UI derives itself (claims.Then: from the login page's
// "enroll" decision, or from the security page) carry no authority of the
// application's: they stand for what the UI decided from the user's
// factors when it made them. Once a user has a factor, adding another is
// a step-up's to allow (the login page then says "verify"; the security
// page asks for a code), so such a link must not outlive the situation it
// was made in: whoever saw a setup link while the user had no factor
// (a password-only attacker at the login page, someone at the user's
// screen) would otherwise add a factor of theirs later, without any
// step-up. So the enroll page, its begin and its confirm each check the
// link against the user's factors now (setupLinkCurrent), confirm
// included: a setup begun before the user got a factor is not finished
// after.

// stepUpSetupTTL is how long the setup link signed after a step-up's
// allow works, counted from the allow (the UI's LinkTTL instead if that
// is shorter): as long as a fresh link, 10 minutes by default, so a
// step-up late in the security link's life still leaves time to scan a
// code; and shorter than the framework's pending enrollment TTL (15
// minutes by default), so a setup begun on it is not refused as expired
// while the link still works. Its fingerprint (Factors) ends it sooner,
// once a factor or key is added with it.
const stepUpSetupTTL = 10 * time.Minute

// factorsFingerprint identifies the user's active factors: "" when there
// are none; else a hash of their provider names and, with counted, for a
// provider that holds several credentials (WebAuthn) how many it holds,
// so adding a factor or a key changes it. counted costs the provider a
// read (its credential list); a link made while the user had no factor
// only needs to know whether there is one now. Plain reads: no attempt,
// no grace login, nothing audited.
func (u *UI) factorsFingerprint(ctx context.Context, user string, counted bool) (string, error) {
	list, err := u.fw.Enrollments(ctx, user)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, e := range list {
		if e.Status != framework.StatusActive {
			continue
		}
		part := e.Provider
		if counted && u.fw.MultipleCredentials(e.Provider) {
			creds, err := u.fw.Credentials(ctx, user, e.Provider)
			if err != nil {
				return "", err
			}
			part += ":" + strconv.Itoa(len(creds))
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "", nil
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return b64.EncodeToString(sum[:12]), nil
}

// setupLinkCurrent reports whether the setup link c may still be used for
// the user's factors now; if not, it shows why, and nothing was changed.
// A link the UI derived without a step-up works while the user has no
// active factor; one signed after a step-up's allow while the user's
// active factors are still those it was signed for (once it added one,
// it is spent). The application's own enroll links are not checked.
//
// The check and the framework's begin or confirm that follows are two
// steps, not one transaction; the framework closes the gap for the
// confirm: it refuses, in the activation's own transaction, a setup begun
// before a factor now active (DecisionWrite.SameFactors), whoever calls.
func (u *UI) setupLinkCurrent(w http.ResponseWriter, r *http.Request, c claims) bool {
	if c.Then == "" {
		return true
	}
	now, err := u.factorsFingerprint(u.ctx(r, c), c.User, c.StepUp)
	if err != nil {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
		return false
	}
	if now == c.Factors && c.StepUp == (c.Factors != "") {
		return true
	}
	switch {
	case c.Then == PageVerify:
		u.renderMessage(w, r, http.StatusForbidden, "This setup link no longer works",
			"Your account has two-step verification now, so this link can't add a sign-in method. Go back to the application and sign in again.")
	default:
		u.renderMessage(w, r, http.StatusForbidden, "This setup link no longer works",
			"Your sign-in methods changed since this link was made, so it can't add one. Open your security page again from the application: adding a sign-in method asks you to confirm it's you first.")
	}
	return false
}

func (u *UI) enrollPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageEnroll, kindLink)
	if !ok || !u.setupLinkCurrent(w, r, c) {
		return
	}
	v := u.base(c, tok)
	on, err := u.active(u.ctx(r, c), c.User, c.Provider)
	if err != nil {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
		return
	}
	if on && !u.fw.MultipleCredentials(c.Provider) {
		u.enrolled(w, r, c, tok, nil, true)
		return
	}
	v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v)
	if v.WebAuthn {
		v.Title, v.AlreadyEnabled = "Add a security key or passkey", on
		v.Lead = "A security key or passkey signs you in with a touch, and can't be phished."
		if on {
			v.Title, v.Steps = "Add another security key or passkey", nil
			v.Lead = "Your account already has a security key. Add another one as a spare."
		}
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	}
	v.Lead, v.Prepare = enrollLead(v), v.texts.Prepare
	u.render(w, http.StatusOK, "enroll_start", v)
}

func (u *UI) enrollBegin(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageEnroll, kindLink)
	if !ok || !u.setupLinkCurrent(w, r, c) {
		return
	}
	ctx := u.ctx(r, c)
	inputs := postedInputs(r, u.base(c, tok).Inputs, c)
	if u.browserKey(c.Provider) { // the key's label, from its own field
		inputs = map[string]string{"label": r.PostForm.Get("label")}
	}
	res, err := u.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: c.User, Provider: c.Provider, Audience: framework.Audience(c.Audience),
		Inputs: inputs})
	if framework.CodeOf(err) == framework.CodeAlreadyEnrolled {
		u.enrolled(w, r, c, tok, nil, true)
		return
	}
	if err != nil {
		v := u.base(c, tok)
		v.Title, v.Steps, v.Error = "Set up two-step verification", enrollSteps(1, v), u.frameworkMessage(err)
		limited := framework.IsSendLimit(err)
		if limited {
			// Codes mailed for this enrollment, or to this address, reached
			// the send limit: nothing was sent now.
			v.Error = "Too many codes were sent. For your security, try again in " + humanDuration(framework.ErrorOf(err).RetryAfter) + "."
		}
		if (limited || framework.CodeOf(err) == framework.CodeInvalidRequest) && len(v.Inputs) > 0 {
			// An input the provider or its rules refused: the user's own
			// words back, with what was wrong (inputs are never secret).
			if !limited {
				v.Lead, v.Error = enrollLead(v), inputError(err, u.fw.EnrollInputs(c.Provider))
			}
			for i := range v.Inputs {
				if !v.Inputs[i].ReadOnly {
					v.Inputs[i].Value = inputs[strings.TrimPrefix(v.Inputs[i].Name, "input_")]
				}
			}
		}
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	}
	if res.Status == framework.StatusActive && res.Display.Public == "" {
		// Nothing to confirm (the provider's backend lets the user in
		// without a factor).
		u.enrolled(w, r, c, tok, res.RecoveryCodes, false)
		return
	}
	v := u.setupView(c, tok)
	if d := res.Display; d.Public != "" {
		// A security key: the page's script hands the options to the browser.
		v.Public = d.Public
		u.render(w, http.StatusOK, "enroll_setup", v)
		return
	}
	u.showDisplay(v, c, res.Display)
	u.render(w, http.StatusOK, "enroll_setup", v)
}

// showDisplay puts an enrollment's display on the setup page, and seals it
// into the page's form so a wrong code can show it again.
func (u *UI) showDisplay(v *view, c claims, d sdk.Display) {
	v.Display = u.sig.sealDisplay(c, d)
	v.CodeField = fieldFor(d.CodeInput, defaultCodeField)
	alt := v.texts.ScanAlt
	if len(d.QRPNG) > 0 {
		v.setQR(d.QRPNG, or(alt, "QR code to scan with your authenticator app"))
	}
	if d.OTPAuthURL != "" {
		// Only an otpauth: URL: the link below is written past
		// html/template's URL filter, and otp.NewKeyFromURL takes any
		// scheme (javascript://totp/... has a key type too).
		if key, err := otp.NewKeyFromURL(d.OTPAuthURL); err == nil && key.Type() != "" && otpauthScheme(key.URL()) {
			v.Secret, v.Issuer, v.Account = groupSecret(key.Secret()), key.Issuer(), key.AccountName()
			v.Digits = key.Digits().Length()
			// On a phone the app is on this device: a link opens it.
			v.OTPAuthURL = template.URL(key.URL()) // an otpauth: URL, which html/template would refuse as an unknown scheme
		}
	}
	if d.ActivationCode != "" || d.BarcodeURL != "" {
		if png := activationQR(d); png != nil {
			v.setQR(png, or(alt, "Activation barcode to scan with the app on your phone"))
		}
		v.ActivationURL = d.ActivationURL
	}
	if v.QR == "" && v.Secret == "" && v.ActivationURL == "" {
		// A provider of its own kind: its words are all there is.
		v.Instructions = d.Instructions
		if v.Push {
			// A push provider without an activation: its backend already
			// has a device for the user, which is adopted only with a
			// passcode typed here (the display's CodeInput names it).
			v.Code, v.CodeLabel = true, "Passcode"
			v.Title, v.Lead = "Confirm your device", ""
			// A provider that sends codes on request (texted passcodes)
			// can send one here too.
			v.SendFactor = sendFactor(u.fw.Factors(c.Provider))
		}
	}
	if v.CodeField.Label != "" {
		v.CodeLabel = v.CodeField.Label
	}
}

// otpauthScheme reports whether s is an otpauth: URL.
func otpauthScheme(s string) bool {
	u, err := url.Parse(s)
	return err == nil && strings.EqualFold(u.Scheme, "otpauth")
}

// setupAgain is the setup page after a confirmation that did not succeed:
// with the display the form carried back, if it opens.
func (u *UI) setupAgain(r *http.Request, c claims, tok string) *view {
	v := u.setupView(c, tok)
	if d, err := u.sig.openDisplay(c, r.PostForm.Get("display")); err == nil {
		u.showDisplay(v, c, d)
	}
	return v
}

// enrollLead is the enroll page's lead: the provider's words, or the
// host's for its kind of factor.
func enrollLead(v *view) string {
	def := "Protect your account with a code from an app on your phone, asked for at each sign-in."
	switch {
	case v.Push:
		def = "Protect your account with an app on your phone: at each sign-in you approve a request on it."
	case len(v.Inputs) > 0:
		def = "Protect your account with a code we send you at each sign-in. First, tell us where to send it."
	}
	return or(v.texts.Enroll, def)
}

// inputError is what was wrong with an input, from the framework's
// message ("inputs.phone: ..." or the provider's "phone: ..."), named as
// the page names the input.
func inputError(err error, inputs sdk.Schema) string {
	msg := framework.ErrorOf(err).Message
	msg = strings.TrimPrefix(msg, "inputs.")
	name, rest, ok := strings.Cut(msg, ": ")
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return "Check what you entered: " + msg
	}
	f, ok := inputs.Field(name)
	if !ok {
		f = sdk.Field{Name: name}
	}
	return inputLabel(f) + ": " + rest
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
	v.Steps, v.Digits, v.CodeField = enrollSteps(2, v), 6, defaultCodeField
	t := v.texts
	switch {
	case v.WebAuthn:
		v.Title = "Use your security key or passkey"
		v.Lead = "Press the button, then touch your security key or confirm with your fingerprint, face or PIN when your browser asks."
	case len(v.Inputs) > 0:
		// A provider that sends its code: its instructions say where.
		v.Title, v.Lead, v.CodeLabel = or(t.SetupTitle, "Enter the code we sent"), t.Setup, "Code from the "+v.ProviderLabel
		v.RestartURL = "/ui/enroll?t=" + tok
		return v
	case v.Push:
		v.Title = or(t.SetupTitle, "Activate the app")
		v.Lead = or(t.Setup, "Open the app on your phone and scan this barcode. Then come back and continue.")
	default:
		v.Title = or(t.SetupTitle, "Scan the QR code")
		v.Lead = or(t.Setup, "Open your authenticator app, add an account and scan this code. Then enter the code the app shows.")
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

// activationQR draws an activation barcode here, so the page needs no
// image from the provider's backend: the same value its barcode URL
// encodes.
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

// enrollSend has the provider send a code to confirm the setup (texted
// passcodes for a device its backend already has), within the
// framework's limit of setup sends, and shows the setup page again.
func (u *UI) enrollSend(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageEnroll, kindLink)
	if !ok || !u.setupLinkCurrent(w, r, c) {
		return
	}
	v := u.setupAgain(r, c, tok)
	factor := r.PostForm.Get("factor")
	if factor == "" || factor != v.SendFactor {
		v.Error = "This setup cannot send you codes."
		u.render(w, http.StatusOK, "enroll_setup", v)
		return
	}
	res, err := u.fw.SendSetupCode(u.ctx(r, c), framework.SetupSendInput{UserID: c.User, Provider: c.Provider, Factor: factor, ClientIP: clientIP(r)})
	switch {
	case framework.IsSendLimit(err):
		v.Error = sendLimitText("Too many codes were sent", err)
	case err != nil:
		v.Error = u.frameworkMessage(err)
	default:
		v.Notice = or(truncate(res.Message, 200), "We sent you codes.") + " Enter one to continue."
	}
	u.render(w, http.StatusOK, "enroll_setup", v)
}

func (u *UI) enrollConfirm(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageEnroll, kindLink)
	if !ok || !u.setupLinkCurrent(w, r, c) {
		return
	}
	code := answerOf(r)
	res, err := u.fw.ConfirmEnrollment(u.ctx(r, c), c.User, c.Provider, code)
	switch framework.CodeOf(err) {
	case "":
	case framework.CodeAlreadyEnrolled:
		u.enrolled(w, r, c, tok, nil, true)
		return
	case framework.CodeNotEnrolled:
		v := u.base(c, tok)
		v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v)
		v.Error = "Your setup was not started or was reset. Start again."
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	default:
		v := u.setupAgain(r, c, tok)
		v.Title, v.Lead, v.Error = "Confirm your setup", "", u.frameworkMessage(err)
		if v.WebAuthn { // its setup page needs fresh options: start again
			v.Title, v.Steps = "Add a security key or passkey", enrollSteps(1, v)
			u.render(w, http.StatusOK, "enroll_start", v)
			return
		}
		u.render(w, http.StatusOK, "enroll_setup", v)
		return
	}
	if res.Status == framework.StatusActive {
		u.enrolled(w, r, c, tok, res.RecoveryCodes, false)
		return
	}
	v := u.setupAgain(r, c, tok)
	v.Title, v.Lead = "Confirm your setup", ""
	switch res.Reason {
	case sdk.ReasonWaiting:
		v.Title = "Waiting for activation"
		v.Notice = or(v.texts.Waiting, "The app has not been activated yet. Finish the activation on your phone, then check again.")
	case sdk.ReasonExpired, sdk.ReasonInvalidState:
		v.Title, v.Steps = "Set up two-step verification", enrollSteps(1, v)
		v.Error = "This setup expired before it was confirmed. Start again to get a new code."
		u.render(w, http.StatusOK, "enroll_start", v)
		return
	case sdk.ReasonReplayed:
		v.Error = "That code was already used. Wait for the next code in your app, then enter it."
	default:
		if v.WebAuthn {
			// The setup page again, with a fresh registration.
			v.Error = "Your security key could not be added (" + string(res.Reason) + "). Start again."
			v.Title, v.Steps = "Add a security key or passkey", enrollSteps(1, v)
			u.render(w, http.StatusOK, "enroll_start", v)
			return
		}
		v.Error = "That code didn't match. Enter the current code from your app; if it still fails, check that your phone's time is set automatically."
		switch {
		case len(v.Inputs) > 0:
			v.Error = "That code didn't match. Enter the code from the latest message, or send a new one."
		case v.Push:
			v.Error = "That passcode wasn't accepted. Enter a new one from the app on your phone."
		}
		v.Error = or(v.texts.WrongCode, v.Error)
	}
	if len(v.Inputs) > 0 && res.Reason == sdk.ReasonReplayed {
		v.Error = "That code can't be used any more. Send a new one."
	}
	u.render(w, http.StatusOK, "enroll_setup", v)
}

// answerOf is the user's answer in a form: the security key's JSON
// (credential), or else the typed code; cut to what any provider takes.
func answerOf(r *http.Request) string {
	if cred := r.PostForm.Get("credential"); cred != "" {
		if len(cred) > maxCredential {
			return ""
		}
		return cred
	}
	code := r.PostForm.Get("code")
	if len(code) > 64 {
		code = code[:64]
	}
	return code
}

// enrolled shows the last step: the recovery codes when this was the first
// factor, else how many are left.
func (u *UI) enrolled(w http.ResponseWriter, r *http.Request, c claims, tok string, codes []string, already bool) {
	ctx := u.ctx(r, c)
	v := u.base(c, tok)
	v.Steps, v.AlreadyEnabled, v.Icon = enrollSteps(3, v), already, "ok"
	if !already && len(codes) == 0 {
		// A factor enrolled without a confirmation step (a user the
		// provider's backend bypasses) gets recovery codes as a confirmed one does: if there are
		// none.
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
			u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
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
