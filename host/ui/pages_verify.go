package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// The answers to the login page: a code, a recovery code or a push, the
// push's waiting page, and the result.

func (u *UI) verifyCode(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "code")
}

func (u *UI) verifyRecovery(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "recovery")
}

func (u *UI) verifyPush(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, "push")
}

// verifyWebAuthn answers the login page with a security key's assertion
// and the txid webauthnStart gave the page.
func (u *UI) verifyWebAuthn(w http.ResponseWriter, r *http.Request) {
	u.verifyWith(w, r, howKey)
}

// webauthnStart gives the login page's script a fresh challenge
// (startKey): its form's token is then bound to it.
func (u *UI) webauthnStart(w http.ResponseWriter, r *http.Request) {
	c, _, ok := u.submit(w, r, PageVerify, kindForm)
	if !ok {
		return
	}
	p, listed := pickProvider(c, r.PostForm.Get("provider"))
	if c.Decision != string(framework.DecisionVerify) || !listed || !u.browserKey(p.Name) {
		keyError(w, http.StatusForbidden, "A security key is not a sign-in method for this account.")
		return
	}
	u.startKey(w, r, c, p.Name)
}

// verifyWith answers a verify form: a code, a recovery code or a push,
// with the provider the form names, which the decision must list.
func (u *UI) verifyWith(w http.ResponseWriter, r *http.Request, how string) {
	c, tok, ok := u.submit(w, r, PageVerify, kindForm)
	if !ok {
		return
	}
	code := answerOf(r)
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
		if key := u.browserKey(p.Name); how == howKey || key {
			// A security key answers only through its own form.
			ok = ok && how == howKey && key
			how = howKey
		}
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
		if how == "code" && u.sendsCode(p) {
			// The code answers the challenge this form's token names.
			if c.TxID == "" || c.Method != p.Name {
				u.show(w, r, c, tok, p.Name, func(v *view) { v.Error = "Send a code first." })
				return
			}
			in.TxID = c.TxID
		}
		switch how {
		case howKey:
			// The challenge this form's token was bound to at its start:
			// a step-up's, or one the form only names, is not taken.
			in.Code, in.TxID = keyAnswer(r, c, p.Name)
			if in.TxID == "" || in.Code == "" {
				u.show(w, r, c, tok, p.Name, func(v *view) { v.Error = "Use your security key with the button on this page." })
				return
			}
		case "push":
			// A push is sent, like a mailed code, through
			// StartVerification: the same send limit, audited as
			// challenge_sent; the waiting page polls its answer.
			remember := c.Days > 0 && r.PostForm.Get("remember") != ""
			u.startPush(w, r, c, tok, p, remember)
			return
		default:
			in.Code = code
			switch {
			case c.TxID != "" && c.Method == p.Name && sendFactor(p) != "":
				// Codes were sent for this form: the passcode answers
				// their challenge (the provider checks it as a passcode).
				in.TxID = c.TxID
			case passcode:
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
		if in.TxID != "" && framework.CodeOf(err) == framework.CodeNotFound {
			// The sent code's challenge is over (expired, or replaced).
			again(sentReasonText(sdk.ReasonExpired, ""))
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
		case u.sendsCode(p):
			again(sentReasonText(res.Reason, res.Message))
		default:
			again(reasonText(string(res.Reason), res.Message))
		}
	}
}

// startPush sends the push of the form's provider p and moves on to the
// waiting page, which polls it; a push the provider decided at once
// (a push provider's bypass, a refusal) goes straight to the result page.
func (u *UI) startPush(w http.ResponseWriter, r *http.Request, c claims, tok string, p framework.ChallengeProvider, remember bool) {
	// The link's id is the login's session: a push another login started
	// (someone else with the password) is never handed to this page.
	res, err := u.fw.StartVerification(u.ctx(r, c), framework.StartInput{UserID: c.User, Provider: p.Name,
		Audience: framework.Audience(c.Audience), Factor: framework.FactorPush, ClientIP: clientIP(r), Session: c.Nonce})
	if err != nil {
		u.startFailed(w, r, c, tok, p.Name, remember, err, "Too many login requests were sent")
		return
	}
	if res.Outcome != "" {
		vr := framework.VerifyResult{Outcome: res.Outcome, Reason: res.Reason, Message: res.Message, Unprompted: res.Unprompted}
		if res.EnrollPortalURL != "" {
			vr.Details = map[string]string{sdk.DetailEnrollPortalURL: res.EnrollPortalURL}
		}
		u.redirectDone(w, r, c, vr, p.Name)
		return
	}
	wc := c.derive(kindWait, u.now(), waitTTL)
	wc.TxID, wc.Method, wc.Remember, wc.decision = res.TxID, p.Name, remember, c.decision
	http.Redirect(w, r, "/ui/verify/wait?t="+u.sig.token(wc), http.StatusSeeOther)
}

// startFailed answers a StartVerification (a push or a sent code) that
// failed: the send limit is not a lockout (a passcode, another method or a
// backup code still works), so the page stays with limited saying what was
// refused; a lockout shows the lockout page; anything else the page with
// the framework's message.
func (u *UI) startFailed(w http.ResponseWriter, r *http.Request, c claims, tok, provider string, remember bool, err error, limited string) {
	var fe *framework.Error
	switch {
	case framework.IsSendLimit(err):
		u.show(w, r, c, tok, provider, func(v *view) {
			v.Error, v.Remember = sendLimitText(limited, err), remember
		})
	case framework.IsPushPending(err):
		// Another login's request waits on the user's phone: if it is not
		// theirs, they should deny it, which frees the slot for this
		// login's next press (framework's freeDenied).
		u.show(w, r, c, tok, provider, func(v *view) {
			v.Error, v.Remember = "A login request from somewhere else is already waiting on your phone. "+
				"It did not come from this page: if you did not start it, deny it. "+
				"Once you deny it, send a push again; or sign in with a code.", remember
		})
	case errors.As(err, &fe) && fe.Code == framework.CodeLockedOut:
		lc := c
		lc.Until = u.now().Add(fe.RetryAfter).UnixMilli()
		u.render(w, http.StatusOK, "locked", u.lockedView(lc, tok))
	default:
		u.show(w, r, c, tok, provider, func(v *view) { v.Error, v.Remember = u.frameworkMessage(err), remember })
	}
}

// sendLimitText says that a send (a push, a mailed code) was refused by
// the framework's send limit (err): what was refused, and when to try
// again. The sign-in page and the step-up say it alike.
func sendLimitText(limited string, err error) string {
	return limited + ". For your security, try again in " + humanDuration(framework.ErrorOf(err).RetryAfter) + "."
}

// alreadySentText: a send pressed again before the provider's resend
// wait sent nothing; another may be asked for after wait.
func alreadySentText(wait time.Duration) string {
	return "A code was sent a moment ago. You can ask for a new one in " + humanDuration(wait) + "."
}

// sentReasonText explains a refused code that was sent to the user.
func sentReasonText(reason sdk.Reason, message string) string {
	switch reason {
	case sdk.ReasonInvalidCode, framework.ReasonNotEnrolled:
		return "That code isn't right. Enter the code from the latest message we sent."
	case sdk.ReasonExpired:
		return "That code has expired or a newer one was sent. Use the latest code, or send a new one."
	case sdk.ReasonReplayed:
		return "That code was already used. Send a new one."
	}
	return reasonText(string(reason), message)
}

// verifySend sends (or sends again) the code of a provider that sends
// one, within the framework's send limit, and shows the page that asks for
// it: its form token then names the challenge (TxID) the code answers.
func (u *UI) verifySend(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageVerify, kindForm)
	if !ok {
		return
	}
	if c.Decision != string(framework.DecisionVerify) {
		u.tokenError(w, r, errTokenInvalid)
		return
	}
	p, ok := pickProvider(c, r.PostForm.Get("provider"))
	// The provider's own sent code, or a push provider's codes it sends
	// on request (the button names that factor).
	factor := r.PostForm.Get("factor")
	if !ok || (factor == "" && !u.sendsCode(p)) || (factor != "" && factor != sendFactor(p)) {
		u.notListed(w, r, c, tok)
		return
	}
	remember := c.Days > 0 && r.PostForm.Get("remember") != ""
	res, err := u.fw.StartVerification(u.ctx(r, c), framework.StartInput{UserID: c.User, Provider: p.Name,
		Audience: framework.Audience(c.Audience), Factor: factor, ClientIP: clientIP(r)})
	if err != nil {
		u.startFailed(w, r, c, tok, p.Name, remember, err, "Too many codes were sent")
		return
	}
	f := c.form(c.decision)
	f.TxID, f.Method, f.ResendAt, f.SentMsg = res.TxID, p.Name, res.ResendAfter.UnixMilli(), truncate(res.Message, 200)
	if res.AlreadySent {
		// Nothing was sent now: the page of the code sent before, saying
		// when another may be.
		if c.TxID == res.TxID {
			f.SentMsg = c.SentMsg
		}
		ftok := u.sig.token(f)
		u.show(w, r, f, ftok, p.Name, func(v *view) {
			v.Notice = alreadySentText(time.Duration(v.ResendIn) * time.Second)
			v.Remember = remember
		})
		return
	}
	u.log.Debug("ui: code sent", "provider", p.Name, "user", c.User)
	next := "/ui/verify?t=" + u.sig.token(f) + "&provider=" + url.QueryEscape(p.Name)
	if remember {
		next += "&remember=1"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// redirectDone sends the browser to the result page of a decision.
func (u *UI) redirectDone(w http.ResponseWriter, r *http.Request, c claims, res framework.VerifyResult, method string) {
	http.Redirect(w, r, u.doneURL(c, res, method), http.StatusSeeOther)
}

func (u *UI) doneURL(c claims, res framework.VerifyResult, method string) string {
	now := u.now()
	rc := c.derive(kindResult, now, resultTTL)
	rc.Outcome, rc.Reason, rc.At, rc.Method = string(res.Outcome), string(res.Reason), now.Unix(), method
	rc.Unprompted = res.Outcome == sdk.Allow && res.Unprompted
	switch res.Reason {
	case sdk.ReasonDeniedByPolicy:
		rc.Message = truncate(res.Message, 200)
	case sdk.ReasonEnrollmentRequired:
		rc.Portal = framework.EnrollPortalURL(res)
	}
	if left, ok := framework.RecoveryCodesLeftAfter(res); ok {
		rc.CodesLeft = strconv.Itoa(left)
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
		// Not found is no failure of ours: the push was decided for
		// another poll, or expired (not logged as one).
		msg := "This login request is no longer waiting. Please try again."
		if framework.CodeOf(err) != framework.CodeNotFound {
			msg = u.frameworkMessage(err)
		}
		u.show(w, r, f, ftok, c.Method, func(v *view) { v.Error = msg })
		return
	}
	p, _ := pickProvider(f, c.Method)
	v := u.verifyView(u.ctx(r, f), f, ftok, p)
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
			switch {
			case c.Decision == "":
				// The application's copy (appResult): it says nothing of
				// the grace logins left and offers no setup.
				v.Lead = "Your account needs two-step verification. Set it up the next time you sign in."
			case c.Grace == 0:
				v.Lead = "Your account needs two-step verification. This was your last sign-in without it: next time you'll have to set it up first."
			case c.Grace == 1:
				v.Lead = "Your account needs two-step verification. You can sign in once more without it."
			default:
				v.Lead = fmt.Sprintf("Your account needs two-step verification. You can sign in %d more times without it.", c.Grace)
			}
			for _, p := range decodeProviders(c.Providers) {
				v.Methods = append(v.Methods, u.methodOf(p, "setup", u.enrollURL(c, p.Name)))
			}
		default:
			v.Lead = "Thanks, that's you."
		}
		if v.UsedRecovery {
			v.Lead = "You signed in with a backup code; it can't be used again. If you lost your phone, set up two-step verification again soon." +
				codesLeftText(c.CodesLeft)
		}
		if c.Return != "" {
			v.ReturnURL = withResult(c.Return, u.appResult(c, tok))
		} else {
			v.Notice = "You can close this page and go back to the application."
		}
	} else {
		v.Title, v.Icon, v.Lead = "Not verified", "error", reasonText(c.Reason, c.Message)
		// The token is signed by this host, which checked the URL when it
		// made it.
		v.ReturnURL, v.EnrollPortalURL = "", c.Portal
		if u.now().Unix() < link.Exp {
			v.VerifyURL = "/ui/verify?t=" + u.sig.token(link)
		} else {
			v.Notice = "Go back to the application to try again."
		}
	}
	u.render(w, http.StatusOK, "done", v)
}

// appResult is the result token tok (claims c) as the application gets
// it on its return URL: without the decision a grace login's result page
// carries (its providers), from which that page offers setup links.
// The return URL is the application's, and what is on it (its logs, its
// history, the Referer of its page) is no proof of the user: its copy
// must open no setup on an account without a factor.
func (u *UI) appResult(c claims, tok string) string {
	if c.decision == (decision{}) {
		return tok
	}
	c.decision = decision{}
	return u.sig.token(c)
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

// codesLeftText tells a user who signed in with a backup code how many
// they have left (left is the result token's count, "" when it has none),
// so that they make new ones before they run out.
func codesLeftText(left string) string {
	switch left {
	case "":
		return ""
	case "0":
		return " That was your last backup code: get new ones from your security settings now."
	case "1":
		return " You have 1 backup code left: get new ones from your security settings soon."
	}
	return " You have " + left + " backup codes left."
}
