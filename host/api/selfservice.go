package api

import (
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
//	{"audience", "step_up": {"provider", "code", "factor"?}, "client_ip"?}
//
// The step-up is a verify with one of the user's factors (or `recovery`
// and a recovery code), through the same attempt gate, lockout, replay
// protection and audit; only its allow removes. 204 removed; 422 with the
// denial's reason (invalid_code, replayed, ...) removes nothing; 404 when
// the user has no such enrollment (checked before the code, which is then
// not spent).

type stepUpJSON struct {
	Provider string `json:"provider"`
	Code     string `json:"code"`
	Factor   string `json:"factor,omitempty"`
}

type removeRequest struct {
	Audience string     `json:"audience"`
	StepUp   stepUpJSON `json:"step_up"`
	ClientIP string     `json:"client_ip,omitempty"`
}

func (s *Server) removeEnrollment(w http.ResponseWriter, r *http.Request) {
	var req removeRequest
	if !decode(w, r, &req) || !validClientIP(w, req.ClientIP) {
		return
	}
	if len(req.StepUp.Code) > maxCodeLen {
		writeError(w, http.StatusBadRequest, "invalid_request", "step_up.code is longer than any provider accepts")
		return
	}
	res, err := s.fw.RemoveEnrollmentStepUp(r.Context(), r.PathValue("provider"), framework.VerifyInput{
		UserID: r.PathValue("user"), Provider: req.StepUp.Provider, Audience: audienceOf(req.Audience),
		Code: req.StepUp.Code, Factor: req.StepUp.Factor, ClientIP: req.ClientIP,
	})
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	if res.Outcome != sdk.Allow {
		writeError(w, http.StatusUnprocessableEntity, string(res.Reason), "the step-up was refused (%s); nothing was removed", res.Reason)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
