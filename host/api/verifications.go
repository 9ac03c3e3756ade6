package api

import (
	"net/http"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// The start of a verification whose factor needs something sent first (an
// emailed code, a push): POST /v1/users/{user}/verifications sends it and
// answers the txid that POST .../verify takes with the user's answer (a
// push's is polled, or verified with no code). The name
// /challenge already means the login decision (policy.go); this is apart.

type startRequest struct {
	Provider string `json:"provider"`
	Audience string `json:"audience"`
	Factor   string `json:"factor,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	// Session names the login this start is for (framework
	// StartInput.Session): a pending push is handed only to its own.
	Session string `json:"session,omitempty"`
}

type startResponse struct {
	TxID        string    `json:"txid"`
	Message     string    `json:"message,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	ResendAfter time.Time `json:"resend_after"`
	Public      string    `json:"public,omitempty"`
	// AlreadySent: nothing was sent now; the pending challenge (same txid)
	// is still the one to answer until resend_after.
	AlreadySent bool `json:"already_sent,omitempty"`
}

// decidedResponse answers a start the provider decided at once instead of
// sending a push (Duo's bypass, a refusal).
type decidedResponse struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// EnrollPortalURL: with reason enrollment_required, where the
	// provider's backend lets the user enroll (as verify answers it).
	EnrollPortalURL string `json:"enroll_portal_url,omitempty"`
	// Unprompted: an allow the user answered nothing for (Duo's bypass),
	// as verify answers it.
	Unprompted bool `json:"unprompted,omitempty"`
}

func (s *Server) startVerification(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if !decode(w, r, &req) || !validClientIP(w, req.ClientIP) {
		return
	}
	res, err := s.fw.StartVerification(r.Context(), framework.StartInput{
		UserID: r.PathValue("user"), Provider: req.Provider, Audience: audienceOf(req.Audience),
		Factor: req.Factor, ClientIP: req.ClientIP, Session: req.Session,
	})
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	if res.Outcome != "" {
		writeJSON(w, http.StatusOK, decidedResponse{Outcome: string(res.Outcome), Reason: string(res.Reason), Message: res.Message,
			EnrollPortalURL: res.EnrollPortalURL, Unprompted: res.Unprompted})
		return
	}
	status := http.StatusCreated
	if res.AlreadySent {
		status = http.StatusOK
	}
	writeJSON(w, status, startResponse{TxID: res.TxID, Message: res.Message, ExpiresAt: res.ExpiresAt.UTC(),
		ResendAfter: res.ResendAfter.UTC(), Public: res.Public, AlreadySent: res.AlreadySent})
}

// validClientIP writes a 400 and returns false unless ip is empty or an IP
// address, by the framework's rule (framework.CheckClientIP), which its
// flows apply again.
func validClientIP(w http.ResponseWriter, ip string) bool {
	if err := framework.CheckClientIP(ip); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "%s", framework.ErrorOf(err).Message)
		return false
	}
	return true
}
