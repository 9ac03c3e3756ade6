package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// maxDeviceToken bounds a presented device token; a real one is 43
// characters.
const maxDeviceToken = 128

type challengeRequest struct {
	Audience    string `json:"audience"`
	DeviceToken string `json:"device_token,omitempty"`
	ClientIP    string `json:"client_ip,omitempty"`
}

type challengeProviderJSON struct {
	Name    string   `json:"name"`
	Factors []string `json:"factors"`
	// ChallengeFirst: the factors to start with POST .../verifications
	// (an emailed code) before verifying with the txid.
	ChallengeFirst []string `json:"challenge_first,omitempty"`
	// CodeInput is the code the user types to sign in, as the provider
	// declared it (for verify, narrowed to the user's enrollment's own,
	// framework.ChallengeProvider.CodeInput), for a host application
	// that renders its own field.
	CodeInput *codeInputJSON `json:"code_input,omitempty"`
}

type challengeResponse struct {
	Decision          string                  `json:"decision"`
	Why               string                  `json:"why"`
	Providers         []challengeProviderJSON `json:"providers,omitempty"`
	RecoveryAvailable *bool                   `json:"recovery_available,omitempty"`
	RetryAfter        *int64                  `json:"retry_after,omitempty"`
	GraceLoginsLeft   *int                    `json:"grace_logins_left,omitempty"`
	// RememberDeviceDays, with verify: how long "remember this device"
	// would skip the second factor; 0 when the policy does not offer it.
	RememberDeviceDays *int `json:"remember_device_days,omitempty"`
}

// challenge answers a login form after the password: allow, verify (with
// which providers), enroll, or deny.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	var req challengeRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.DeviceToken) > maxDeviceToken {
		writeError(w, http.StatusBadRequest, "invalid_request", "device_token is longer than any token this host issues")
		return
	}
	if !validClientIP(w, req.ClientIP) {
		return
	}
	res, err := s.fw.Challenge(r.Context(), framework.ChallengeInput{
		UserID: r.PathValue("user"), Audience: audienceOf(req.Audience), DeviceToken: req.DeviceToken, ClientIP: req.ClientIP,
	})
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	out := challengeResponse{Decision: string(res.Decision), Why: string(res.Why)}
	switch {
	case res.Decision == framework.DecisionVerify, res.Decision == framework.DecisionEnroll, res.Why == framework.WhyGraceLogin:
		out.Providers = []challengeProviderJSON{}
		for _, p := range res.Providers {
			out.Providers = append(out.Providers, challengeProviderJSON{Name: p.Name, Factors: p.Factors, ChallengeFirst: p.ChallengeFirst,
				CodeInput: codeInputOf(p.CodeInput)})
		}
	}
	switch res.Decision {
	case framework.DecisionVerify:
		out.RecoveryAvailable = &res.RecoveryAvailable
		out.RememberDeviceDays = &res.RememberDeviceDays
	case framework.DecisionDeny:
		out.RecoveryAvailable = &res.RecoveryAvailable
		secs := int64((res.RetryAfter + time.Second - 1) / time.Second)
		out.RetryAfter = &secs
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	case framework.DecisionAllow:
		if res.Why == framework.WhyGraceLogin {
			out.GraceLoginsLeft = &res.GraceLoginsLeft
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type deviceJSON struct {
	ID        string    `json:"id"`
	Audience  string    `json:"audience"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// listDevices lists a user's remembered devices: never a token or a hash.
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	list, err := s.fw.Devices(r.Context(), r.PathValue("user"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	out := make([]deviceJSON, 0, len(list))
	for _, d := range list {
		out = append(out, deviceJSON{ID: d.ID, Audience: string(d.Audience), Label: d.Label, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.RevokeDevice(r.Context(), r.PathValue("user"), r.PathValue("id")); err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeDevices forgets every remembered device of the user ("log out
// everywhere").
func (s *Server) revokeDevices(w http.ResponseWriter, r *http.Request) {
	n, err := s.fw.RevokeDevices(r.Context(), r.PathValue("user"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

// pollRemember reads a push poll's "remember this device" from the query:
// ?remember_device=true&device_label=... (a poll has no body).
func pollRemember(w http.ResponseWriter, r *http.Request) (framework.PollInput, bool) {
	in := framework.PollInput{UserID: r.PathValue("user"), TxID: r.PathValue("txid"), DeviceLabel: r.URL.Query().Get("device_label")}
	if v := r.URL.Query().Get("remember_device"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "remember_device must be true or false")
			return in, false
		}
		in.RememberDevice = b
	}
	return in, true
}
