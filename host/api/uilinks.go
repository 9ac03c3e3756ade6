package api

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/twofactor/twofactor/host/ui"
)

// uiKeyInfo separates the web UI's link-signing key from every other use
// of the encryption key.
const uiKeyInfo = "twofactor web ui links v1"

// WithUI serves the web UI under /ui/ and the API routes that hand out
// its links:
//
//	POST /v1/users/{user}/ui-links  (app key)   {"page":"enroll"|"verify"|"security","audience","provider","return_url"?,"inputs"?,"fix_inputs"?}
//	POST /v1/ui-links               (admin key) {"page":"admin"}
//	POST /v1/ui-results             (app key)   {"result"}: checks what the UI appended to return_url
//
// A verify link's provider is optional: the page is a login page that
// follows the login policy's decision and offers the user's providers. A
// security link names none: it opens the user's own security page
// (factors, recovery codes, remembered devices).
//
// Links are signed with a key derived (HKDF-SHA256) from encryptionKey,
// so they survive restarts and work on every replica sharing the config.
// now is the trusted clock (the framework's); time.Now when nil.
func WithUI(encryptionKey []byte, now func() time.Time) ServerOption {
	return func(s *Server) {
		key, err := hkdf.Key(sha256.New, encryptionKey, nil, uiKeyInfo, 32)
		if err == nil && len(encryptionKey) < 16 {
			err = errors.New("encryption key too short")
		}
		var u *ui.UI
		if err == nil {
			u, err = ui.New(ui.Options{Framework: s.fw, Key: key, Now: now, Logger: s.log.Named("ui")})
		}
		if err != nil {
			// The config loader guarantees the key; templates are embedded.
			// Either failing is a bug, not an admin's mistake.
			panic("api: web UI: " + err.Error())
		}
		// Its routes are in the route table (routeTable).
		s.ui = &uiLinks{s: s, ui: u}
	}
}

type uiLinks struct {
	s  *Server
	ui *ui.UI
}

type uiLinkRequest struct {
	Page      string `json:"page"`
	Audience  string `json:"audience,omitempty"`
	Provider  string `json:"provider,omitempty"`
	ReturnURL string `json:"return_url,omitempty"`
	// Inputs prefill an enroll page's inputs (an email address); with
	// FixInputs the user cannot change them.
	Inputs    map[string]string `json:"inputs,omitempty"`
	FixInputs bool              `json:"fix_inputs,omitempty"`
}

type uiLinkResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	ID        string    `json:"id"`
}

func (l *uiLinks) create(w http.ResponseWriter, r *http.Request) {
	var req uiLinkRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Page == ui.PageAdmin {
		writeError(w, http.StatusBadRequest, "invalid_request", "admin links come from POST /v1/ui-links with an admin key")
		return
	}
	link, err := l.ui.NewLink(ui.LinkRequest{Page: req.Page, User: r.PathValue("user"), Audience: string(audienceOf(req.Audience)),
		Provider: req.Provider, ReturnURL: req.ReturnURL, Issuer: keyName(r), Inputs: req.Inputs, FixInputs: req.FixInputs})
	if err != nil {
		l.s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, uiLinkResponse(link))
}

func (l *uiLinks) createAdmin(w http.ResponseWriter, r *http.Request) {
	var req uiLinkRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Page != ui.PageAdmin {
		writeError(w, http.StatusBadRequest, "invalid_request", `page must be "admin"; user pages come from POST /v1/users/{user}/ui-links`)
		return
	}
	link, err := l.ui.NewLink(ui.LinkRequest{Page: ui.PageAdmin, Audience: string(audienceOf(req.Audience)), Provider: req.Provider,
		ReturnURL: req.ReturnURL, Issuer: keyName(r), Inputs: req.Inputs, FixInputs: req.FixInputs})
	if err != nil {
		l.s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, uiLinkResponse(link))
}

type uiResultRequest struct {
	Result string `json:"result"`
}

type uiResultResponse struct {
	LinkID     string    `json:"link_id"`
	User       string    `json:"user"`
	Audience   string    `json:"audience"`
	Provider   string    `json:"provider"`
	Method     string    `json:"method"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Unprompted bool      `json:"unprompted,omitempty"`
	VerifiedAt time.Time `json:"verified_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// checkResult tells the application what a verification in the UI
// decided. The application must also check that link_id is the id of the
// link it issued for this login, and accept a result once.
//
// method is how an allow was reached: the provider the user answered,
// "recovery" for a recovery code, or, when the login policy let the user
// in without a second factor, its why: "remembered_device" (this browser
// is remembered), "not_required" (no factor, none required) or
// "grace_login" (one is required, but a grace login was left). An
// application that needs a factor actually answered checks it, and
// unprompted: an allow the provider gave without asking the user anything
// (Duo's bypass) names the provider as method, and answered nothing.
func (l *uiLinks) checkResult(w http.ResponseWriter, r *http.Request) {
	var req uiResultRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := l.ui.CheckResult(req.Result)
	switch {
	case errors.Is(err, ui.ErrResultExpired):
		writeError(w, http.StatusUnprocessableEntity, "expired", "the verification result has expired; verify again")
		return
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, "invalid_result", "not a verification result of this host")
		return
	}
	writeJSON(w, http.StatusOK, uiResultResponse{LinkID: res.LinkID, User: res.User, Audience: res.Audience,
		Provider: res.Provider, Method: res.Method, Unprompted: res.Unprompted, Outcome: res.Outcome, Reason: res.Reason,
		VerifiedAt: res.At, ExpiresAt: res.ExpiresAt})
}
