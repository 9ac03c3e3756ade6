package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Verification pages: the login decision, then a code, a recovery code or
// a push and its waiting page, and the result.
//
// A verify link (from the API) opens the page with the login policy's
// decision, framework.Challenge, made once for that page open: it may use
// one of the user's grace logins and it is audited. What follows — the
// forms, a switch to another provider, a wrong code shown again, the push
// waiting page — carries the decision in a signed form or wait token and
// never decides again.

// verifyPage opens the login page: a link decides; a form token (the page
// after its decision: a provider switch, the way back from a push) shows
// its decision again.
func (u *UI) verifyPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("t")
	c, err := u.sig.parse(tok, u.now())
	if err == nil && (c.Page != PageVerify || (c.Kind != kindLink && c.Kind != kindForm)) {
		err = errTokenInvalid
	}
	if err != nil {
		u.tokenError(w, r, err)
		return
	}
	if c.Kind == kindLink {
		if r.Method == http.MethodHead || prefetch(r) {
			// Deciding may spend a grace login: only for a page the user
			// opens, not for a link checker or a browser's speculation.
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		u.decide(w, r, c)
		return
	}
	u.show(w, r, c, tok, r.URL.Query().Get("provider"), func(v *view) {
		v.Remember = v.RememberDays > 0 && r.URL.Query().Get("remember") != ""
	})
}

// prefetch tells a browser's prefetch or prerender of a page (Chrome's
// Sec-Purpose, the older Purpose and X-Moz headers) from a navigation.
func prefetch(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Sec-Purpose"), "prefetch") || r.Header.Get("Purpose") == "prefetch" ||
		r.Header.Get("X-Moz") == "prefetch"
}

// decide asks the login policy what this user must do, with this
// browser's remembered device, and acts on the answer.
func (u *UI) decide(w http.ResponseWriter, r *http.Request, c claims) {
	presented := u.presentedDevice(r, c)
	res, err := u.fw.Challenge(u.ctx(r, c), framework.ChallengeInput{UserID: c.User, Audience: framework.Audience(c.Audience),
		DeviceToken: presented, ClientIP: clientIP(r)})
	if err != nil {
		u.renderMessage(w, r, http.StatusServiceUnavailable, "Something went wrong", u.frameworkMessage(err))
		return
	}
	d := decision{Decision: string(res.Decision), Why: string(res.Why), Providers: encodeProviders(res.Providers),
		Recovery: res.RecoveryAvailable}
	switch res.Decision {
	case framework.DecisionAllow:
		d.Grace = res.GraceLoginsLeft
		u.allow(w, r, c, d)
		return
	case framework.DecisionVerify:
		d.Days = res.RememberDeviceDays
		if presented != "" {
			// The user has a factor and the browser's device was not
			// accepted (expired, revoked, remembering turned off): forget it.
			u.clearDeviceCookie(w, r, c)
		}
	case framework.DecisionDeny:
		d.Until = u.now().Add(res.RetryAfter).UnixMilli()
	case framework.DecisionEnroll:
	default:
		u.log.Error("ui: unknown login decision", "decision", res.Decision)
		u.renderMessage(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Please try again in a moment.")
		return
	}
	f := c.form(d)
	u.show(w, r, f, u.sig.token(f), "", nil)
}

// allow ends a login the policy lets in without a second factor: straight
// back to the application with a signed allow whose method is the why. A
// grace login stops at the result page first, to say how many are left
// and offer to set up a factor now.
func (u *UI) allow(w http.ResponseWriter, r *http.Request, c claims, d decision) {
	now := u.now()
	rc := c.derive(kindResult, now, resultTTL)
	rc.Outcome, rc.At, rc.Method = string(sdk.Allow), now.Unix(), d.Why
	grace := d.Why == string(framework.WhyGraceLogin)
	if grace {
		rc.decision = decision{Decision: d.Decision, Why: d.Why, Providers: d.Providers, Grace: d.Grace}
	}
	tok := u.sig.token(rc)
	if c.Return != "" && !grace {
		http.Redirect(w, r, withResult(c.Return, tok), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/verify/done?t="+tok, http.StatusSeeOther)
}

// show renders the page of a decision carried by a form token c: the
// verify forms (for provider want, if given), the enroll choices, or the
// lockout. edit adjusts the page (an error) before it is rendered.
func (u *UI) show(w http.ResponseWriter, r *http.Request, c claims, tok, want string, edit func(*view)) {
	var v *view
	var page string
	switch framework.Decision(c.Decision) {
	case framework.DecisionVerify:
		p, ok := pickProvider(c, want)
		if !ok {
			u.notListed(w, r, c, tok)
			return
		}
		v, page = u.verifyView(u.ctx(r, c), c, tok, p), "verify"
	case framework.DecisionEnroll:
		v, page = u.chooseView(c), "choose"
	case framework.DecisionDeny:
		v, page = u.lockedView(c, tok), "locked"
	default:
		u.tokenError(w, r, errTokenInvalid)
		return
	}
	if edit != nil {
		edit(v)
	}
	u.render(w, http.StatusOK, page, v)
}

// notListed refuses a provider the decision did not list: only a changed
// address or form asks for one.
func (u *UI) notListed(w http.ResponseWriter, r *http.Request, c claims, tok string) {
	v := &view{Title: "This sign-in method isn't available", Icon: "lock",
		Lead: "It is not one you can use for this account. Go back and choose one of the methods offered."}
	if c.Decision == string(framework.DecisionVerify) {
		v.VerifyURL = "/ui/verify?t=" + tok
	}
	u.render(w, http.StatusForbidden, "message", v)
}

// pickProvider chooses the provider to show: want if given (it must be
// listed), else the link's if listed, else the first.
func pickProvider(c claims, want string) (framework.ChallengeProvider, bool) {
	ps := decodeProviders(c.Providers)
	find := func(name string) (framework.ChallengeProvider, bool) {
		i := slices.IndexFunc(ps, func(p framework.ChallengeProvider) bool { return p.Name == name })
		if i < 0 {
			return framework.ChallengeProvider{}, false
		}
		return ps[i], true
	}
	if want != "" {
		return find(want)
	}
	if p, ok := find(c.Provider); ok {
		return p, true
	}
	if len(ps) == 0 {
		return framework.ChallengeProvider{}, false
	}
	return ps[0], true
}

// encodeProviders writes a decision's providers for a token:
// "name:factor+factor,...", a factor that needs a challenge first marked
// with a trailing "*". Provider names are [a-z0-9_-].
func encodeProviders(ps []framework.ChallengeProvider) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		fs := make([]string, len(p.Factors))
		for j, f := range p.Factors {
			fs[j] = f
			if slices.Contains(p.ChallengeFirst, f) {
				fs[j] += challengeMark
			}
		}
		parts[i] = p.Name + ":" + strings.Join(fs, "+")
	}
	return strings.Join(parts, ",")
}

// challengeMark follows a factor that needs a challenge first in a token.
const challengeMark = "*"

func decodeProviders(s string) []framework.ChallengeProvider {
	if s == "" {
		return nil
	}
	var out []framework.ChallengeProvider
	for part := range strings.SplitSeq(s, ",") {
		name, fs, _ := strings.Cut(part, ":")
		p := framework.ChallengeProvider{Name: name, Factors: []string{}}
		if fs != "" {
			p.Factors = strings.Split(fs, "+")
		}
		for i, f := range p.Factors {
			if base, ok := strings.CutSuffix(f, challengeMark); ok {
				p.Factors[i] = base
				p.ChallengeFirst = append(p.ChallengeFirst, base)
			}
		}
		out = append(out, p)
	}
	return out
}

// factorsOf says what a provider's form asks: a push, a typed code, or
// both (a code being then a push app's "passcode"). A provider that has not told
// its factors (it never started) gets a code field.
func factorsOf(p framework.ChallengeProvider) (push, code, passcode bool) {
	push = slices.Contains(p.Factors, framework.FactorPush)
	passcode = slices.Contains(p.Factors, framework.FactorPasscode)
	code = passcode || slices.Contains(p.Factors, framework.FactorCode) || !push
	return push, code, passcode
}

// sendFactor is a push provider's named factor whose codes are sent on
// request (Capabilities.Challenges: texted passcodes), or "".
func sendFactor(p framework.ChallengeProvider) string {
	push, _, _ := factorsOf(p)
	if !push {
		return ""
	}
	for _, f := range p.ChallengeFirst {
		if f != framework.FactorCode && f != framework.FactorPush {
			return f
		}
	}
	return ""
}

// sendsCode says whether a provider's code is sent to the user first (a
// mailed code): its page asks for a code once one was sent.
func (u *UI) sendsCode(p framework.ChallengeProvider) bool {
	// A security key's challenge is answered by the browser, on its own
	// form (webauthn.js), not with a code sent to the user.
	return !u.browserKey(p.Name) && slices.Contains(p.ChallengeFirst, framework.FactorCode)
}

// method is a provider offered as a choice: a link to switch to it, or to
// set it up.
type method struct {
	ID     string // the link's element id
	Name   string
	Label  string
	Detail string
	URL    string
}

func (u *UI) methodOf(p framework.ChallengeProvider, id, href string) method {
	m := method{ID: id + "-" + p.Name, Name: p.Name, Label: u.providerTitle(p.Name), URL: href}
	push, code, _ := factorsOf(p)
	switch {
	case u.fw.Texts(p.Name).Choice != "":
		m.Detail = u.fw.Texts(p.Name).Choice
	case u.browserKey(p.Name):
		m.Detail = "Touch your security key, or use a passkey."
	case u.sendsCode(p):
		m.Detail = "A code we send you."
	case push && code:
		m.Detail = "Approve a request on your phone, or type a passcode."
	case push:
		m.Detail = "Approve a request on your phone."
	default:
		m.Detail = "A code from your device."
	}
	return m
}

func (u *UI) verifyView(ctx context.Context, c claims, tok string, p framework.ChallengeProvider) *view {
	v := u.base(c, tok)
	v.Provider, v.ProviderLabel, v.WebAuthn = p.Name, u.providerLabel(p.Name), u.browserKey(p.Name)
	v.texts = u.fw.Texts(p.Name)
	var passcode bool
	v.Push, v.Code, passcode = factorsOf(p)
	// The code this user's enrollment takes (its setup's length, within
	// what the provider declared at its start; the link's token carries
	// only the factors).
	def, ci := defaultCodeField, u.fw.SignInCode(ctx, c.User, p.Name)
	if v.Push {
		def = defaultPasscodeField
	}
	v.CodeField = fieldFor(ci, def)
	v.Title = "Two-step verification"
	switch {
	case v.WebAuthn:
		v.Lead = "Use your security key or passkey to confirm it's you."
		v.KeyForm = &keyForm{ID: "verify-form", Action: "/ui/verify/key", Start: "/ui/verify/key/start", Provider: p.Name, Button: "Use your security key"}
	case v.Push && passcode:
		v.Lead = fmt.Sprintf("Approve a login request in %s, or enter a passcode.", v.ProviderLabel)
	case v.Push:
		v.Lead = fmt.Sprintf("Approve a login request in %s.", v.ProviderLabel)
	case u.sendsCode(p):
		u.sentView(v, c, p)
	default:
		v.Lead = fmt.Sprintf("Enter the code from your %s.", v.ProviderLabel)
	}
	if !v.Sent { // once a code was sent, the lead says where to
		v.Lead = or(v.texts.SignIn, v.Lead)
	}
	if v.Push && !v.WebAuthn {
		v.SendFactor = sendFactor(p)
		if v.SendFactor != "" && c.TxID != "" && c.Method == p.Name {
			// Codes were sent for this form: the provider's sentence says
			// where; the passcode field takes one.
			v.Lead = or(c.SentMsg, "We sent you codes.") + " Enter one to continue."
			v.ResendIn = secondsUntil(u.now(), time.UnixMilli(c.ResendAt))
		}
	}
	if v.CodeField.Label != "" { // the provider's name for its code
		v.CodeLabel = v.CodeField.Label
	}
	v.Recovery, v.RememberDays = c.Recovery, c.Days
	for _, o := range decodeProviders(c.Providers) {
		if o.Name != p.Name {
			v.Others = append(v.Others, u.methodOf(o, "use", "/ui/verify?t="+tok+"&provider="+url.QueryEscape(o.Name)))
		}
	}
	return v
}

// chooseView offers the providers to set up: the user must enroll before
// logging in (or chose to, at a grace login).
func (u *UI) chooseView(c claims) *view {
	v := &view{Title: "Set up two-step verification", Icon: "lock"}
	if c.Why == string(framework.WhyGraceLogin) {
		v.Lead = "Choose how you'll confirm it's you when you sign in."
	} else {
		v.Lead = "Your account needs two-step verification before you can sign in. Choose how you'll confirm it's you:"
	}
	for _, p := range decodeProviders(c.Providers) {
		v.Methods = append(v.Methods, u.methodOf(p, "setup", u.enrollURL(c, p.Name)))
	}
	if len(v.Methods) == 0 {
		v.Error = "No sign-in method can be set up for your account right now. Contact support."
	}
	return v
}

// enrollURL is a link to set up provider, derived from the login page's
// link c: same user, audience, return URL and expiry; once enrolled it
// leads back to the login page.
func (u *UI) enrollURL(c claims, provider string) string {
	e := c.link()
	e.Page, e.Provider, e.Then = PageEnroll, provider, PageVerify
	e.decision = decision{Decision: string(framework.DecisionEnroll), Why: c.Why, Providers: c.Providers, Grace: c.Grace}
	return "/ui/enroll?t=" + u.sig.token(e)
}

// lockedView says when a locked-out user may try again, and offers a
// recovery code, which also ends the lockout.
func (u *UI) lockedView(c claims, tok string) *view {
	v := u.base(c, tok)
	if c.Why == string(framework.WhyProviderUnavailable) {
		// The user has a factor that cannot be used now: no way around it
		// but a recovery code, or trying again when it is back.
		v.Title, v.Icon = "Your sign-in method isn't available", "lock"
		v.Lead = "Your second factor can't be checked right now. Try again in a few minutes, use a recovery code, or ask support."
		v.Recovery, v.RecoveryOpen = c.Recovery, c.Recovery
		v.RetryURL = "/ui/verify?t=" + u.sig.token(c.link())
		return v
	}
	v.Title, v.Icon = "Too many attempts", "lock"
	left := time.UnixMilli(c.Until).Sub(u.now())
	switch {
	case left > maxRetryShown:
		v.Lead = "For your security, this account is locked after too many wrong attempts. Ask support to unlock it."
	case left <= 0:
		v.Lead = "Sign-in was paused after too many wrong attempts. You can try again now."
	default:
		// The base template writes "Try again in <countdown>." after the
		// lead; countdown.js counts it down from CountdownMS.
		v.Lead = "For your security, sign-in is paused after too many wrong attempts."
		v.Countdown, v.CountdownMS = humanDuration(left), left.Milliseconds()
	}
	v.Recovery, v.RecoveryOpen = c.Recovery, c.Recovery
	if left <= maxRetryShown && c.Until < c.LinkExp*1000 {
		v.RetryURL = "/ui/verify?t=" + u.sig.token(c.link())
	}
	return v
}

// sentView is the page of a provider that sends its code: "Send code"
// until one was sent for this form (c.TxID), then the code field, the
// provider's sentence and "Resend in 27 s". The server renders the
// seconds left, so the page works without JavaScript; resend.js only
// counts them down.
func (u *UI) sentView(v *view, c claims, p framework.ChallengeProvider) {
	v.Sends, v.CodeLabel = true, "Code from the "+v.ProviderLabel
	if c.TxID == "" || c.Method != p.Name {
		v.Code = false
		v.Lead = "We'll send you a code. Enter it here to continue."
		return
	}
	v.Sent, v.Lead = true, c.SentMsg
	if v.Lead == "" {
		v.Lead = "We sent you a code."
	}
	v.Lead += " Enter it to continue."
	v.ResendIn = secondsUntil(u.now(), time.UnixMilli(c.ResendAt))
}

// secondsUntil is the whole seconds from now to t, rounded up: a button
// that says 0 must not be refused.
func secondsUntil(now, t time.Time) int {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
