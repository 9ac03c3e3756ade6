package ui

import (
	"encoding/json"
	"errors"
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
	u.show(w, r, c, tok, r.URL.Query().Get("provider"), nil)
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
		v, page = u.verifyView(c, tok, p), "verify"
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
// "name:factor+factor,...". Provider names are [a-z0-9_-].
func encodeProviders(ps []framework.ChallengeProvider) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Name + ":" + strings.Join(p.Factors, "+")
	}
	return strings.Join(parts, ",")
}

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
		out = append(out, p)
	}
	return out
}

// factorsOf says what a provider's form asks: a push, a typed code, or
// both (a code being then Duo's "passcode"). A provider that has not told
// its factors (it never started) gets a code field.
func factorsOf(p framework.ChallengeProvider) (push, code, passcode bool) {
	push = slices.Contains(p.Factors, framework.FactorPush)
	passcode = slices.Contains(p.Factors, framework.FactorPasscode)
	code = passcode || slices.Contains(p.Factors, framework.FactorCode) || !push
	return push, code, passcode
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

func methodOf(p framework.ChallengeProvider, id, href string) method {
	m := method{ID: id + "-" + p.Name, Name: p.Name, Label: providerTitle(p.Name), URL: href}
	push, code, _ := factorsOf(p)
	switch {
	case p.Name == "totp":
		m.Detail = "A 6-digit code from an authenticator app on your phone."
	case p.Name == "duo":
		m.Detail = "Approve a request in Duo Mobile, or type a passcode from it."
	case push && code:
		m.Detail = "Approve a request on your phone, or type a passcode."
	case push:
		m.Detail = "Approve a request on your phone."
	default:
		m.Detail = "A code from your device."
	}
	return m
}

// providerTitle names a provider at the start of a line.
func providerTitle(name string) string {
	l := providerLabel(name)
	if l == "" || l == strings.ToUpper(l) {
		return l
	}
	return strings.ToUpper(l[:1]) + l[1:]
}

func (u *UI) verifyView(c claims, tok string, p framework.ChallengeProvider) *view {
	v := u.base(c, tok)
	v.Provider, v.ProviderLabel = p.Name, providerLabel(p.Name)
	var passcode bool
	v.Push, v.Code, passcode = factorsOf(p)
	v.Title = "Two-step verification"
	switch {
	case v.Push && passcode:
		v.Lead = fmt.Sprintf("Approve a login request in %s, or enter a passcode.", v.ProviderLabel)
	case v.Push:
		v.Lead = fmt.Sprintf("Approve a login request in %s.", v.ProviderLabel)
	case p.Name == "totp":
		v.Lead = "Enter the 6-digit code from your authenticator app."
	default:
		v.Lead = fmt.Sprintf("Enter the code from your %s.", v.ProviderLabel)
	}
	v.Recovery, v.RememberDays = c.Recovery, c.Days
	for _, o := range decodeProviders(c.Providers) {
		if o.Name != p.Name {
			v.Others = append(v.Others, methodOf(o, "use", "/ui/verify?t="+tok+"&provider="+url.QueryEscape(o.Name)))
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
		v.Methods = append(v.Methods, methodOf(p, "setup", u.enrollURL(c, p.Name)))
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
	v.Title, v.Icon = "Too many attempts", "lock"
	left := time.UnixMilli(c.Until).Sub(u.now())
	switch {
	case left > maxRetryShown:
		v.Lead = "For your security, this account is locked after too many wrong attempts. Ask support to unlock it."
	case left <= 0:
		v.Lead = "Sign-in was paused after too many wrong attempts. You can try again now."
	default:
		v.Lead = "For your security, sign-in is paused after too many wrong attempts. Try again in " + humanDuration(left) + "."
	}
	v.Recovery, v.RecoveryOpen = c.Recovery, c.Recovery
	if left <= maxRetryShown && c.Until < c.LinkExp*1000 {
		v.RetryURL = "/ui/verify?t=" + u.sig.token(c.link())
	}
	return v
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

// verifyWith answers a verify form: a code, a recovery code or a push,
// with the provider the form names, which the decision must list.
func (u *UI) verifyWith(w http.ResponseWriter, r *http.Request, how string) {
	c, tok, ok := u.submit(w, r, PageVerify, kindForm)
	if !ok {
		return
	}
	code := r.PostForm.Get("code")
	if len(code) > 64 {
		code = code[:64]
	}
	if (how == "recovery" && c.Decision != string(framework.DecisionVerify) && c.Decision != string(framework.DecisionDeny)) ||
		(how != "recovery" && c.Decision != string(framework.DecisionVerify)) {
		u.tokenError(w, r, errTokenInvalid)
		return
	}
	in := framework.VerifyInput{UserID: c.User, Audience: framework.Audience(c.Audience), ClientIP: clientIP(r)}
	var p framework.ChallengeProvider
	if how == "recovery" {
		in.Provider, in.Code = framework.RecoveryProvider, code
	} else {
		p, ok = pickProvider(c, r.PostForm.Get("provider"))
		push, hasCode, passcode := factorsOf(p)
		if how == "push" && code != "" && hasCode {
			// Enter in the passcode field submits the form with its first
			// button, the push: the typed passcode is what was meant.
			how = "code"
		}
		if !ok || (how == "push" && !push) || (how == "code" && !hasCode) {
			u.notListed(w, r, c, tok)
			return
		}
		in.Provider = p.Name
		if how == "push" {
			in.Factor = framework.FactorPush
		} else {
			in.Code = code
			if passcode {
				in.Factor = framework.FactorPasscode
			}
		}
		if c.Days > 0 && r.PostForm.Get("remember") != "" {
			in.RememberDevice, in.DeviceLabel = true, deviceLabel(r)
		}
	}
	again := func(msg string) {
		// The same page again, from the same decision.
		u.show(w, r, c, tok, p.Name, func(v *view) {
			v.Error, v.RecoveryOpen = msg, how == "recovery" || v.RecoveryOpen
			v.Remember = in.RememberDevice
		})
	}
	res, err := u.fw.Verify(u.ctx(r, c), in)
	if err != nil {
		var fe *framework.Error
		if errors.As(err, &fe) && fe.Code == framework.CodeLockedOut && how != "recovery" {
			// Locked out by now: the lockout page, with its recovery form.
			lc := c
			lc.Until = u.now().Add(fe.RetryAfter).UnixMilli()
			u.render(w, http.StatusOK, "locked", u.lockedView(lc, tok))
			return
		}
		again(u.frameworkMessage(err))
		return
	}
	switch res.Outcome {
	case sdk.Allow:
		if res.DeviceToken != "" {
			u.setDeviceCookie(w, r, c, res.DeviceToken, c.Days)
		}
		u.redirectDone(w, r, c, res, in.Provider)
	case sdk.Pending:
		if res.TxID == "" {
			again(u.frameworkMessage(errors.New("pending without a transaction")))
			return
		}
		wc := c.derive(kindWait, u.now(), waitTTL)
		wc.TxID, wc.Method, wc.Remember, wc.decision = res.TxID, p.Name, in.RememberDevice, c.decision
		http.Redirect(w, r, "/ui/verify/wait?t="+u.sig.token(wc), http.StatusSeeOther)
	default:
		switch {
		case how == "recovery" && res.Reason == sdk.ReasonInvalidCode:
			again("That backup code isn't valid or was already used.")
		case how == "push":
			// A push that Duo refused at once (policy, no device) is final
			// for this attempt: say why on the result page.
			u.redirectDone(w, r, c, res, in.Provider)
		default:
			again(reasonText(string(res.Reason), res.Message))
		}
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
// result page to go to. An approval the user asked to remember sets the
// device cookie on w.
func (u *UI) poll(w http.ResponseWriter, r *http.Request, c claims) (string, error) {
	in := framework.PollInput{UserID: c.User, TxID: c.TxID, ClientIP: clientIP(r)}
	if c.Remember && c.Days > 0 {
		in.RememberDevice, in.DeviceLabel = true, deviceLabel(r)
	}
	res, err := u.fw.Poll(u.ctx(r, c), in)
	if err != nil {
		return "", err
	}
	if res.Outcome == sdk.Pending {
		return "", nil
	}
	if res.DeviceToken != "" {
		u.setDeviceCookie(w, r, c, res.DeviceToken, c.Days)
	}
	return u.doneURL(c, res, c.Method), nil
}

func (u *UI) verifyWait(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageVerify, kindWait)
	if !ok {
		return
	}
	next, err := u.poll(w, r, c)
	if err == nil && next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	// The page of the decision this push came from, without deciding again.
	f := c.form(c.decision)
	ftok := u.sig.token(f)
	if err != nil {
		msg := u.frameworkMessage(err)
		if framework.CodeOf(err) == framework.CodeNotFound {
			msg = "This login request is no longer waiting. Please try again."
		}
		u.show(w, r, f, ftok, c.Method, func(v *view) { v.Error = msg })
		return
	}
	p, _ := pickProvider(f, c.Method)
	v := u.verifyView(f, ftok, p)
	v.Title = "Check your phone"
	v.Lead = fmt.Sprintf("We sent a login request to %s. Approve it to continue.", v.ProviderLabel)
	v.Icon = "wait"
	v.WaitURL = "/ui/verify/wait?t=" + tok
	v.PollURL = "/ui/verify/status?t=" + tok
	v.VerifyURL = "/ui/verify?t=" + ftok + "&provider=" + url.QueryEscape(c.Method)
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
	next, err := u.poll(w, r, c)
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
		switch framework.Why(c.Method) {
		case framework.WhyRememberedDevice:
			v.Lead = "This device is remembered, so no code was needed."
		case framework.WhyNotRequired:
			v.Title, v.Lead = "You're signed in", "Two-step verification isn't required for your account."
		case framework.WhyGraceLogin:
			v.Title, v.Icon = "Set up two-step verification soon", "lock"
			switch c.Grace {
			case 0:
				v.Lead = "Your account needs two-step verification. This was your last sign-in without it: next time you'll have to set it up first."
			case 1:
				v.Lead = "Your account needs two-step verification. You can sign in once more without it."
			default:
				v.Lead = fmt.Sprintf("Your account needs two-step verification. You can sign in %d more times without it.", c.Grace)
			}
			for _, p := range decodeProviders(c.Providers) {
				v.Methods = append(v.Methods, methodOf(p, "setup", u.enrollURL(c, p.Name)))
			}
		default:
			v.Lead = "Thanks, that's you."
		}
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
