package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// Verification pages: code, recovery code, push and its waiting page, done.

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
