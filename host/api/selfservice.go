package api

import (
	"encoding/json"
	"net/http"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// A user's own security page, built by the application rather than the
// web UI: listing factors, adding one, new recovery codes and forgetting
// devices are the app-key routes already there; removing a factor, which
// DELETE .../enrollments/{provider} keeps for admins, is open to the app
// after a step-up the host checks:
//
//	POST /v1/users/{user}/enrollments/{provider}/remove  (app key)
//	{"audience", "step_up": {"provider", "code" or "credential", "factor"?, "txid"?}, "client_ip"?}
//
// The step-up is a verify with one of the user's factors (or `recovery`
// and a recovery code), through the same attempt gate, lockout, replay
// protection and audit; only its allow removes. 204 removed; 422 with the
// denial's reason (invalid_code, replayed, ...) removes nothing; 404 when
// the user has no such enrollment but another active one (checked before
// the code, which is then not spent). No such enrollment and none active
// is a removal already done, answered 204 without the code checked: the
// retry of a removal that failed part-way finishes it (the user's
// recovery codes and remembered devices go with the last factor).
//
// Removing one key of an enrollment that holds several (webauthn) is the
// same, and DELETE .../credentials/{credential} is likewise for admins:
//
//	POST /v1/users/{user}/enrollments/{provider}/credentials/{credential}/remove  (app key)
//
// with the same body: 200 with the keys left; 422 removes nothing; 404 for
// a key the enrollment does not hold and 400 for its last key, both before
// the code is checked. A new set of recovery codes is ten ways into the
// account for whoever receives it, so it takes the same step-up:
//
//	POST /v1/users/{user}/recovery-codes  (app key; the same body)
//
// 201 with the new codes; 422 keeps the old ones; 404 not_enrolled for a
// user without a confirmed factor, before the code is checked.

type stepUpJSON struct {
	Provider string `json:"provider"`
	Code     string `json:"code,omitempty"`
	// Credential is a security key's answer (WebAuthn), instead of a code.
	Credential json.RawMessage `json:"credential,omitempty"`
	Factor     string          `json:"factor,omitempty"`
	// TxID is the challenge (POST .../verifications) the code or the
	// credential answers: an emailed code, a security key's assertion.
	TxID string `json:"txid,omitempty"`
}

// stepUpRequest is the body of an action that takes a step-up.
type stepUpRequest struct {
	Audience string     `json:"audience"`
	StepUp   stepUpJSON `json:"step_up"`
	ClientIP string     `json:"client_ip,omitempty"`
}

func (s *Server) removeEnrollment(w http.ResponseWriter, r *http.Request) {
	in, ok := stepUpInput(w, r)
	if !ok {
		return
	}
	res, err := s.fw.RemoveEnrollmentStepUp(r.Context(), r.PathValue("provider"), in)
	if !s.stepUpAllowed(w, r, res, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) removeCredentialStepUp(w http.ResponseWriter, r *http.Request) {
	in, ok := stepUpInput(w, r)
	if !ok {
		return
	}
	res, left, err := s.fw.RemoveCredentialStepUp(r.Context(), r.PathValue("provider"), r.PathValue("credential"), in)
	if !s.stepUpAllowed(w, r, res, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": credentialsJSON(left)})
}

func (s *Server) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	in, ok := stepUpInput(w, r)
	if !ok {
		return
	}
	res, codes, err := s.fw.RegenerateRecoveryCodesStepUp(r.Context(), in)
	if !s.stepUpAllowed(w, r, res, err) {
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"recovery_codes": codes})
}

// stepUpInput reads a stepUpRequest into the step-up's verify input,
// answering 400 itself when it cannot.
func stepUpInput(w http.ResponseWriter, r *http.Request) (framework.VerifyInput, bool) {
	var req stepUpRequest
	if !decode(w, r, &req) || !validClientIP(w, req.ClientIP) {
		return framework.VerifyInput{}, false
	}
	answer, ok := answerOf(w, req.StepUp.Code, req.StepUp.Credential)
	if !ok {
		return framework.VerifyInput{}, false
	}
	return framework.VerifyInput{
		UserID: r.PathValue("user"), Provider: req.StepUp.Provider, Audience: audienceOf(req.Audience),
		Code: answer, Factor: req.StepUp.Factor, TxID: req.StepUp.TxID, ClientIP: req.ClientIP,
	}, true
}

// stepUpAllowed answers a failed or refused step-up (nothing was changed)
// and reports whether the step-up allowed the action, which then happened.
func (s *Server) stepUpAllowed(w http.ResponseWriter, r *http.Request, res framework.VerifyResult, err error) bool {
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return false
	}
	if res.Outcome != sdk.Allow {
		writeError(w, http.StatusUnprocessableEntity, string(res.Reason), "the step-up was refused (%s); nothing was changed", res.Reason)
		return false
	}
	return true
}
