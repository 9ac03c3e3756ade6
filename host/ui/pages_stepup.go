package ui

import (
	"net/http"
	"slices"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// The security page's step-up (see pages_security.go): the page that asks
// for it, a security key's challenge for it, and its answer.

// stepUpMethods are the user's active factors, enabled for the audience,
// this page can check: a typed code (a passcode for a push provider) that
// needs no challenge sent first, a code the provider sends first, which
// the page's "send" asks for (securitySend), and a security key, whose
// challenge the page's script starts (securityKeyStart). Sent marks the
// provider whose challenge c's token names.
func (u *UI) stepUpMethods(r *http.Request, c claims) ([]stepUpMethod, int, error) {
	ctx := u.ctx(r, c)
	list, err := u.fw.Enrollments(ctx, c.User)
	if err != nil {
		return nil, 0, err
	}
	var out []stepUpMethod
	for _, e := range list {
		if e.Status != framework.StatusActive || !u.allowed(e.Provider, c.Audience) {
			continue
		}
		p := u.fw.Factors(e.Provider)
		m := stepUpMethod{Name: e.Provider, Label: u.providerTitle(e.Provider), Key: u.browserKey(e.Provider), Sends: u.sendsCode(p)}
		m.Sent = m.Sends && c.TxID != "" && c.Method == m.Name
		_, code, passcode := factorsOf(p)
		if !m.Key && !m.Sends && (!code || slices.Contains(p.ChallengeFirst, framework.FactorCode) || (passcode && slices.Contains(p.ChallengeFirst, framework.FactorPasscode))) {
			continue
		}
		out = append(out, m)
	}
	n, err := u.fw.RecoveryCodesLeft(ctx, c.User)
	return out, n, err
}

// renderStepUp shows the step-up page; chosen is the method the user
// tried, selected again after a refusal.
func (u *UI) renderStepUp(w http.ResponseWriter, r *http.Request, c claims, tok, errMsg string, recoveryOpen bool, chosen ...string) {
	v, err := u.stepUpView(r, c, tok, errMsg, recoveryOpen, chosen...)
	if err != nil {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
		return
	}
	u.render(w, http.StatusOK, "stepup", v)
}

// stepUpView is the step-up page's view (renderStepUp).
func (u *UI) stepUpView(r *http.Request, c claims, tok, errMsg string, recoveryOpen bool, chosen ...string) (*view, error) {
	methods, codes, err := u.stepUpMethods(r, c)
	if err != nil {
		return nil, err
	}
	v := u.base(c, tok)
	v.Title, v.Icon, v.Error, v.Action = "Confirm it's you", "lock", errMsg, c.Action
	if len(chosen) > 0 {
		v.Provider = chosen[0]
	}
	for _, m := range methods {
		if m.Sends {
			v.SendMethods = append(v.SendMethods, m)
		}
		switch {
		case m.Sent && len(chosen) == 0:
			// The code just sent is the one to type.
			v.Provider = m.Name
			v.StepUpMethods = append(v.StepUpMethods, m)
		case !m.Key && (!m.Sends || m.Sent):
			v.StepUpMethods = append(v.StepUpMethods, m)
		case v.KeyForm == nil: // one key form: webauthn.js runs the page's first
			v.KeyForm = &keyForm{ID: "stepup-key-form", Action: "/ui/security/confirm", Start: "/ui/security/key/start",
				Provider: m.Name, Button: "Use your " + u.providerLabel(m.Name)}
		}
	}
	v.Recovery, v.RecoveryOpen = codes > 0, recoveryOpen || (codes > 0 && len(methods) == 0)
	v.SecurityURL = u.securityURL(c, "")
	how := "enter a code from one of your sign-in methods"
	if len(v.StepUpMethods) == 0 && v.KeyForm != nil {
		how = "use your " + u.providerLabel(v.KeyForm.Provider)
	}
	if len(v.StepUpMethods) == 0 && v.KeyForm == nil && len(v.SendMethods) > 0 {
		how = "send yourself a code and enter it"
	}
	if p, ok := strings.CutPrefix(c.Action, actionRemove); ok {
		v.Lead = "To remove " + u.providerLabel(p) + " from your account, " + how + "."
		v.Danger, v.ConfirmLabel = true, "Confirm and remove"
	} else if p, ok := strings.CutPrefix(c.Action, actionAdd); ok {
		v.Lead = "To add " + u.providerLabel(p) + " to your account, " + how + "."
		v.ConfirmLabel = "Confirm and continue"
	} else {
		v.Lead = "To get new backup codes, " + how + ". Your current backup codes will stop working."
		v.ConfirmLabel = "Confirm and get new codes"
	}
	if len(methods) == 0 && codes == 0 {
		v.Error = "None of your sign-in methods can confirm this here. Contact support."
	}
	return v, nil
}

// securityKeyStart gives the step-up page's script a security key's
// challenge (startKey): the step-up's token, with its action, is then
// bound to it, and securityConfirm takes the key's answer with that token
// only.
func (u *UI) securityKeyStart(w http.ResponseWriter, r *http.Request) {
	c, _, ok := u.submit(w, r, PageSecurity, kindStepUp)
	if !ok {
		return
	}
	provider := r.PostForm.Get("provider")
	methods, _, err := u.stepUpMethods(r, c)
	if err != nil {
		keyError(w, frameworkStatus(err), u.frameworkMessage(err))
		return
	}
	if !slices.ContainsFunc(methods, func(m stepUpMethod) bool { return m.Key && m.Name == provider }) {
		keyError(w, http.StatusForbidden, "A security key is not one of your sign-in methods.")
		return
	}
	u.startKey(w, r, c, provider)
}

// securitySend sends (or sends again) the code of a provider that sends
// one, for the step-up, within the framework's send limit as at sign-in,
// and shows the step-up page again with its token bound to that challenge
// (TxID, Method): the code is taken with that token only (stepUpAnswer).
func (u *UI) securitySend(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageSecurity, kindStepUp)
	if !ok {
		return
	}
	provider := r.PostForm.Get("provider")
	methods, _, err := u.stepUpMethods(r, c)
	if err != nil {
		u.renderStepUp(w, r, c, tok, u.frameworkMessage(err), false)
		return
	}
	if !slices.ContainsFunc(methods, func(m stepUpMethod) bool { return m.Sends && m.Name == provider }) {
		u.renderStepUp(w, r, c, tok, "Choose one of the sign-in methods offered.", false)
		return
	}
	res, err := u.fw.StartVerification(u.ctx(r, c), framework.StartInput{UserID: c.User, Provider: provider,
		Audience: framework.Audience(c.Audience), ClientIP: clientIP(r)})
	switch {
	case framework.IsSendLimit(err):
		u.renderStepUp(w, r, c, tok, sendLimitText("Too many codes were sent", err), false)
		return
	case err != nil:
		u.renderStepUp(w, r, c, tok, u.frameworkMessage(err), false)
		return
	}
	bound, notice := c, alreadySentText(res.ResendAfter.Sub(u.now()))
	switch {
	case !res.AlreadySent:
		bound.TxID, bound.Method, bound.SentMsg = res.TxID, provider, truncate(res.Message, 200)
		notice = or(bound.SentMsg, "We sent you a code.") + " Enter it below."
	case c.TxID != res.TxID:
		// Nothing was sent now, and the code pending is another page's
		// (a sign-in's, another step-up's): this step-up is not bound to
		// it, so that code confirms nothing here. A new one may be sent
		// once the provider's wait is over.
	}
	btok := u.sig.token(bound)
	v, err := u.stepUpView(r, bound, btok, "", false)
	if err != nil {
		u.renderMessage(w, r, frameworkStatus(err), "Something went wrong", u.frameworkMessage(err))
		return
	}
	v.Notice = notice
	u.render(w, http.StatusOK, "stepup", v)
}

// stepUpAnswer reads the step-up form's answer into in: a backup code, a
// typed code, or a security key's assertion with the challenge the
// token is bound to. It returns what to tell the user when the form
// cannot be checked ("" when it can).
func (u *UI) stepUpAnswer(r *http.Request, c claims, in *framework.VerifyInput) (string, error) {
	if in.Provider != framework.RecoveryProvider {
		methods, _, err := u.stepUpMethods(r, c)
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(methods, func(m stepUpMethod) bool { return m.Name == in.Provider })
		if i < 0 {
			return "Choose one of the sign-in methods offered.", nil
		}
		if methods[i].Sends {
			// The code answers the challenge this step-up's token names.
			if !methods[i].Sent {
				return "Send a code first.", nil
			}
			in.TxID = c.TxID
		}
		if methods[i].Key {
			if in.Code, in.TxID = keyAnswer(r, c, in.Provider); in.Code == "" {
				return "Use your " + u.providerLabel(in.Provider) + " with the button on this page.", nil
			}
			return "", nil
		}
		if _, _, passcode := factorsOf(u.fw.Factors(in.Provider)); passcode {
			in.Factor = framework.FactorPasscode
		}
	}
	in.Code = r.PostForm.Get("code")
	if len(in.Code) > 64 {
		in.Code = in.Code[:64]
	}
	if strings.TrimSpace(in.Code) == "" {
		return "Enter the code.", nil
	}
	return "", nil
}

// securityConfirm checks the step-up's answer with the framework's Verify
// and, on an allow, does the action the step-up token carries.
func (u *UI) securityConfirm(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageSecurity, kindStepUp)
	if !ok {
		return
	}
	ctx := u.ctx(r, c)
	provider := r.PostForm.Get("provider")
	recovery := provider == framework.RecoveryProvider
	in := framework.VerifyInput{UserID: c.User, Audience: framework.Audience(c.Audience), Provider: provider, ClientIP: clientIP(r)}
	if msg, err := u.stepUpAnswer(r, c, &in); err != nil || msg != "" {
		if err != nil {
			msg = u.frameworkMessage(err)
		}
		u.renderStepUp(w, r, c, tok, msg, recovery, provider)
		return
	}
	sent := in.TxID != "" && !u.browserKey(provider) // a code sent for this step-up
	// The framework checks the step-up and acts on its allow alone: it
	// removes the factor, or issues the new codes; for an addition, the
	// allow is what makes this handler sign the enrollment's link.
	remove, isRemove := strings.CutPrefix(c.Action, actionRemove)
	add, isAdd := strings.CutPrefix(c.Action, actionAdd)
	var res framework.VerifyResult
	var codes []string
	var err error
	switch {
	case isRemove:
		res, err = u.fw.RemoveEnrollmentStepUp(ctx, remove, in)
	case isAdd:
		res, err = u.fw.AddFactorStepUp(ctx, add, in)
	default:
		res, codes, err = u.fw.RegenerateRecoveryCodesStepUp(ctx, in)
	}
	switch {
	case framework.CodeOf(err) == framework.CodeAlreadyEnrolled && isAdd:
		// Set up meanwhile (another tab): nothing left to add.
		http.Redirect(w, r, u.securityURL(c, ""), http.StatusSeeOther)
		return
	case framework.CodeOf(err) == framework.CodeNotFound && isRemove:
		// Removed meanwhile (another tab): what was asked is done.
		http.Redirect(w, r, u.securityURL(c, "removed"), http.StatusSeeOther)
		return
	case err != nil:
		var msg string
		switch {
		case sent && framework.CodeOf(err) == framework.CodeNotFound:
			// The sent code's challenge is over (expired, or replaced).
			msg = sentReasonText(sdk.ReasonExpired, "")
		case in.TxID != "" && framework.CodeOf(err) == framework.CodeNotFound:
			// The key's challenge is over (used, or expired): no fault
			// of ours, not logged as one.
			msg = "That request is over. Use your " + u.providerLabel(provider) + " again."
		default:
			msg = u.frameworkMessage(err)
		}
		u.renderStepUp(w, r, c, tok, msg, recovery, provider)
		return
	case res.Outcome != sdk.Allow:
		msg := reasonText(string(res.Reason), res.Message)
		switch {
		case recovery && res.Reason == sdk.ReasonInvalidCode:
			msg = "That backup code isn't valid or was already used."
		case sent:
			msg = sentReasonText(res.Reason, res.Message)
		}
		u.renderStepUp(w, r, c, tok, msg, recovery, provider)
		return
	case isRemove:
		http.Redirect(w, r, u.securityURL(c, "removed"), http.StatusSeeOther)
		return
	case isAdd:
		// The allow opens the enrollment, and only this one: its link is
		// made here, bound to the user's factors after the allow, never
		// shown before.
		link, err := u.stepUpEnrollURL(ctx, c, add)
		if err != nil {
			u.renderStepUp(w, r, c, tok, u.frameworkMessage(err), recovery, provider)
			return
		}
		http.Redirect(w, r, link, http.StatusSeeOther)
		return
	}
	v := u.base(c, tok)
	v.Title, v.Icon, v.RecoveryCodes = "Your new backup codes", "ok", codes
	v.Lead = "Your old backup codes no longer work. Each of these lets you sign in once if you lose your phone: keep them somewhere safe, such as a password manager. They won't be shown again."
	v.SecurityURL = u.securityURL(c, "")
	u.render(w, http.StatusOK, "codes", v)
}
