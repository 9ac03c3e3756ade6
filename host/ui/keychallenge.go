package ui

import (
	"encoding/json"
	"net/http"

	"github.com/twofactor/twofactor/framework"
)

// A security key's challenge, for the sign-in page and the security
// page's step-up alike: webauthn.js asks a start URL for one, runs the
// browser's ceremony and posts the assertion with the token the start
// gave. That token is the page's own (the sign-in form's, or the
// step-up's with its action) bound to the challenge it started (TxID,
// Method), so an assertion is taken only where its challenge was started:
// one of a sign-in is no step-up, one of a step-up is no sign-in, and
// one of a step-up for one action (or user) does not confirm another.

// startKey starts provider's challenge for the user of c and answers the
// page's script: the credential-request options for
// navigator.credentials.get, the txid, and c bound to the challenge as
// the form's new token with its CSRF value.
func (u *UI) startKey(w http.ResponseWriter, r *http.Request, c claims, provider string) {
	res, err := u.fw.StartVerification(u.ctx(r, c), framework.StartInput{UserID: c.User, Provider: provider,
		Audience: framework.Audience(c.Audience), ClientIP: clientIP(r)})
	if framework.CodeOf(err) == framework.CodeLockedOut {
		// The send limit, or a lockout: said in a key's words.
		keyError(w, http.StatusTooManyRequests, "Too many sign-in attempts for now. Wait a few minutes and try again, or use a backup code.")
		return
	}
	if err != nil {
		keyError(w, frameworkStatus(err), u.frameworkMessage(err))
		return
	}
	c.TxID, c.Method = res.TxID, provider
	tok := u.sig.token(c)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"txid": res.TxID, "public": res.Public, "t": tok, "csrf": u.sig.csrfValue(tok)})
}

// keyError is a key start's refusal, for the page's script to show.
func keyError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// keyAnswer is the assertion a key's form posts and the challenge it
// answers: the one c's token was bound to by startKey for provider, never
// a txid the form names. txid is "" when the token is bound to none (the
// page's token from before a start, another provider's challenge).
func keyAnswer(r *http.Request, c claims, provider string) (credential, txid string) {
	if c.Method != provider || c.TxID == "" {
		return "", ""
	}
	cred := r.PostForm.Get("credential")
	if len(cred) > maxCredential {
		cred = ""
	}
	return cred, c.TxID
}

// keyForm is a security key's form on a page (template key-form).
type keyForm struct {
	ID       string // the form's element id
	Action   string // where the assertion goes
	Start    string // where the script asks for a challenge
	Provider string
	Button   string
}
