package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// openapiJSON is the API's description, converted once.
var openapiJSON, openapiErr = JSON()

// serveOpenAPI answers GET /v1/openapi.json without a key: the document
// describes the API and holds nothing about users or the configuration.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	if openapiErr != nil {
		// Only a broken embedded file, which openapi_test rules out.
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openapiJSON)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is for load balancers: 503 until the store answers and every
// provider runs. Details stay in the log; the answer names no internals.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.Ready(r.Context()); err != nil {
		s.log.Warn("not ready", "error", err)
		writeError(w, http.StatusServiceUnavailable, "not_ready", "not ready")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type diagnosticJSON struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Value    string `json:"value,omitempty"`
	Severity string `json:"severity"`
	Fix      string `json:"fix,omitempty"`
}

type providerJSON struct {
	Name        string           `json:"name"`
	Version     string           `json:"version"`
	Audiences   []string         `json:"audiences"`
	Health      string           `json:"health"`
	Running     bool             `json:"running"`
	Restarts    int              `json:"restarts"`
	Diagnostics []diagnosticJSON `json:"diagnostics"`
	LastError   string           `json:"last_error,omitempty"`
	// Hung: the plugin process misses its health pings (it is killed and
	// restarted); Hangs and Timeouts count since the provider started.
	Hung     bool `json:"hung"`
	Hangs    int  `json:"hangs"`
	Timeouts int  `json:"timeouts"`
	// FastPath: Verify reaches the plugin over its unix-socket side
	// channel; false means over go-plugin's gRPC (an older SDK, another
	// OS, a refused peer, TF_PLUGIN_FASTPATH=off), which an admin
	// chasing login latency wants to see.
	FastPath bool `json:"fast_path"`
}

func (s *Server) listProviders(w http.ResponseWriter, _ *http.Request) {
	out := []providerJSON{}
	for _, p := range s.fw.Providers() {
		j := providerJSON{Name: p.Name, Version: p.Version, Audiences: []string{}, Health: string(p.Health),
			Running: p.Running, Restarts: p.Restarts, Diagnostics: []diagnosticJSON{}, LastError: p.LastError,
			Hung: p.Hung, Hangs: p.Hangs, Timeouts: p.Timeouts, FastPath: p.FastPath}
		if p.Staff {
			j.Audiences = append(j.Audiences, string(framework.AudienceStaff))
		}
		if p.Clients {
			j.Audiences = append(j.Audiences, string(framework.AudienceClient))
		}
		for _, d := range p.Diagnostics {
			j.Diagnostics = append(j.Diagnostics, diagnosticJSON{Code: d.Code, Message: d.Message, Value: d.Value,
				Severity: string(framework.SeverityOf(d)), Fix: d.Fix})
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

type enrollRequest struct {
	Provider    string `json:"provider"`
	Audience    string `json:"audience"`
	AccountName string `json:"account_name,omitempty"`
	// Inputs answer what the provider's enrollment asks for (an email
	// address: {"email": "..."}).
	Inputs map[string]string `json:"inputs,omitempty"`
}

type displayJSON struct {
	OTPAuthURL     string `json:"otpauth_url,omitempty"`
	QRPNGBase64    string `json:"qr_png_base64,omitempty"`
	ActivationURL  string `json:"activation_url,omitempty"`
	ActivationCode string `json:"activation_code,omitempty"`
	BarcodeURL     string `json:"barcode_url,omitempty"`
	Instructions   string `json:"instructions,omitempty"`
	// Public is what the browser needs to continue (WebAuthn creation
	// options, JSON), handed over unchanged.
	Public string `json:"public,omitempty"`
	// CodeInput is the confirmation code the user types, as the provider
	// describes it (the framework checked it), for a host application
	// that renders its own field.
	CodeInput *codeInputJSON `json:"code_input,omitempty"`
}

type codeInputJSON struct {
	Kind      sdk.CodeKind `json:"kind"`
	MinLength int          `json:"min_length"`
	MaxLength int          `json:"max_length"`
	Label     string       `json:"label,omitempty"`
}

// codeInputOf is ci as the API shows it: absent when the provider said
// nothing.
func codeInputOf(ci sdk.CodeInput) *codeInputJSON {
	if ci.IsZero() {
		return nil
	}
	return &codeInputJSON{Kind: ci.Kind, MinLength: ci.MinLen, MaxLength: ci.MaxLen, Label: ci.Label}
}

func (s *Server) beginEnrollment(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.fw.BeginEnrollment(r.Context(), framework.EnrollInput{
		UserID: r.PathValue("user"), Provider: req.Provider, Audience: audienceOf(req.Audience), AccountName: req.AccountName,
		Inputs: req.Inputs,
	})
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	d := displayJSON{OTPAuthURL: res.Display.OTPAuthURL, ActivationURL: res.Display.ActivationURL,
		ActivationCode: res.Display.ActivationCode, BarcodeURL: res.Display.BarcodeURL, Instructions: res.Display.Instructions,
		Public: res.Display.Public}
	if len(res.Display.QRPNG) > 0 {
		d.QRPNGBase64 = base64.StdEncoding.EncodeToString(res.Display.QRPNG)
	}
	d.CodeInput = codeInputOf(res.Display.CodeInput)
	out := map[string]any{"provider": req.Provider, "status": res.Status, "display": d}
	if len(res.RecoveryCodes) > 0 {
		out["recovery_codes"] = res.RecoveryCodes // active at once: shown this once
	}
	writeJSON(w, http.StatusCreated, out)
}

type confirmRequest struct {
	Code string `json:"code"`
	// Credential is the browser's answer to a WebAuthn ceremony (the
	// PublicKeyCredential as JSON), instead of a code.
	Credential json.RawMessage `json:"credential,omitempty"`
}

// maxCodeLen bounds a code before it reaches a provider: every provider's
// codes, spaced out, are far shorter.
const maxCodeLen = 64

// maxCredentialLen bounds a browser's WebAuthn answer: one with an
// attestation certificate chain is a few KiB.
const maxCredentialLen = 32 << 10

// answerOf returns what goes to the provider as the user's answer: the
// code, or the credential JSON. It writes the error and returns false on
// a bad one.
func answerOf(w http.ResponseWriter, code string, credential json.RawMessage) (string, bool) {
	if len(credential) == 0 || string(credential) == "null" {
		if len(code) > maxCodeLen {
			writeError(w, http.StatusBadRequest, "invalid_request", "code is longer than any provider accepts")
			return "", false
		}
		return code, true
	}
	switch {
	case code != "":
		writeError(w, http.StatusBadRequest, "invalid_request", "send a code or a credential, not both")
	case len(credential) > maxCredentialLen:
		writeError(w, http.StatusBadRequest, "invalid_request", "credential is longer than %d bytes", maxCredentialLen)
	case credential[0] != '{':
		writeError(w, http.StatusBadRequest, "invalid_request", "credential must be the browser's PublicKeyCredential as a JSON object")
	default:
		return string(credential), true
	}
	return "", false
}

func (s *Server) confirmEnrollment(w http.ResponseWriter, r *http.Request) {
	var req confirmRequest
	if !decode(w, r, &req) {
		return
	}
	code, ok := answerOf(w, req.Code, req.Credential)
	if !ok {
		return
	}
	res, err := s.fw.ConfirmEnrollment(r.Context(), r.PathValue("user"), r.PathValue("provider"), code)
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	if res.Status != framework.StatusActive && res.Reason == sdk.ReasonWaiting {
		// Not a failure: the user has not finished on the phone yet.
		writeJSON(w, http.StatusAccepted, map[string]any{"status": res.Status, "reason": res.Reason})
		return
	}
	if res.Status != framework.StatusActive {
		writeError(w, http.StatusUnprocessableEntity, string(res.Reason), "%s", reasonText(res.Reason))
		return
	}
	out := map[string]any{"status": res.Status}
	if len(res.RecoveryCodes) > 0 {
		// Shown once: only their hashes are kept.
		out["recovery_codes"] = res.RecoveryCodes
	}
	writeJSON(w, http.StatusOK, out)
}

type setupSendRequest struct {
	Factor   string `json:"factor"`
	ClientIP string `json:"client_ip,omitempty"`
}

// sendSetupCode has the provider send a code for a pending setup (Duo's
// texted passcodes), within the setup's send limit; the code is then
// confirmed as any other.
func (s *Server) sendSetupCode(w http.ResponseWriter, r *http.Request) {
	var req setupSendRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := s.fw.SendSetupCode(r.Context(), framework.SetupSendInput{UserID: r.PathValue("user"),
		Provider: r.PathValue("provider"), Factor: req.Factor, ClientIP: req.ClientIP})
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": res.Message})
}

// regenerateRecoveryCodes issues a new set, invalidating the old one.
func (s *Server) recoveryCodesLeft(w http.ResponseWriter, r *http.Request) {
	n, err := s.fw.RecoveryCodesLeft(r.Context(), r.PathValue("user"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"remaining": n})
}

type enrollmentJSON struct {
	Provider    string     `json:"provider"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
}

func (s *Server) listEnrollments(w http.ResponseWriter, r *http.Request) {
	list, err := s.fw.Enrollments(r.Context(), r.PathValue("user"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	out := make([]enrollmentJSON, 0, len(list))
	for _, e := range list {
		j := enrollmentJSON{Provider: e.Provider, Status: string(e.Status), CreatedAt: e.CreatedAt.UTC()}
		if !e.ConfirmedAt.IsZero() {
			t := e.ConfirmedAt.UTC()
			j.ConfirmedAt = &t
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"enrollments": out})
}

func (s *Server) resetEnrollment(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.ResetEnrollment(r.Context(), r.PathValue("user"), r.PathValue("provider")); err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type credentialJSON struct {
	ID         string     `json:"id"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func credentialsJSON(list []sdk.Credential) []credentialJSON {
	out := make([]credentialJSON, 0, len(list))
	for _, c := range list {
		j := credentialJSON{ID: c.ID, Label: c.Label, CreatedAt: c.CreatedAt.UTC()}
		if !c.LastUsedAt.IsZero() {
			t := c.LastUsedAt.UTC()
			j.LastUsedAt = &t
		}
		out = append(out, j)
	}
	return out
}

// listCredentials lists the keys of an enrollment that holds several
// (security keys and passkeys).
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) {
	list, err := s.fw.Credentials(r.Context(), r.PathValue("user"), r.PathValue("provider"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": credentialsJSON(list)})
}

// removeCredential removes one key; the last one cannot be removed (an
// admin resets the enrollment instead).
func (s *Server) removeCredential(w http.ResponseWriter, r *http.Request) {
	list, err := s.fw.RemoveCredential(r.Context(), r.PathValue("user"), r.PathValue("provider"), r.PathValue("credential"))
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": credentialsJSON(list)})
}

type verifyRequest struct {
	Provider string `json:"provider"`
	Audience string `json:"audience"`
	Code     string `json:"code,omitempty"`
	Factor   string `json:"factor,omitempty"`
	// TxID answers the challenge POST .../verifications sent.
	TxID     string `json:"txid,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	// Session names the login a push started here is for (framework
	// VerifyInput.Session).
	Session string `json:"session,omitempty"`
	// Remember this device (see policy.go): a device_token with an allow.
	RememberDevice bool   `json:"remember_device,omitempty"`
	DeviceLabel    string `json:"device_label,omitempty"`
	// The device_token an earlier verify gave this device: the provider's
	// own remembered-device token kept with it (Duo's) goes to the
	// provider, which may then allow without asking.
	DeviceToken string `json:"device_token,omitempty"`
	// Credential is the browser's WebAuthn assertion (the
	// PublicKeyCredential as JSON), instead of a code.
	Credential json.RawMessage `json:"credential,omitempty"`
}

type verifyResponse struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	TxID    string `json:"txid,omitempty"`
	// DeviceToken is shown once; only its hash is stored.
	DeviceToken string `json:"device_token,omitempty"`
	// EnrollPortalURL, with reason enrollment_required, is where the
	// provider's backend (Duo) lets the user enroll, when it says.
	EnrollPortalURL string `json:"enroll_portal_url,omitempty"`
	// RecoveryCodesLeft, with an allow by recovery code only, is how many
	// of the user's codes are left (0 included: that is when the user
	// most needs to know), so the application can tell them to make new
	// ones before they run out.
	RecoveryCodesLeft *int `json:"recovery_codes_left,omitempty"`
	// Unprompted, with an allow, says the user answered nothing: the
	// provider let them in on its own (Duo's bypass, or Duo's remembered
	// device). An application that needs a second factor actually
	// answered (before a payment, a password change) treats it as none.
	Unprompted bool `json:"unprompted,omitempty"`
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if !decode(w, r, &req) {
		return
	}
	code, ok := answerOf(w, req.Code, req.Credential)
	if !ok {
		return
	}
	// The txid is the framework's to check (framework.issuedTxID): one
	// that could not be issued is an unknown one, 404, in a poll's path too.
	if !validClientIP(w, req.ClientIP) {
		return
	}
	res, err := s.fw.Verify(r.Context(), framework.VerifyInput{
		UserID: r.PathValue("user"), Provider: req.Provider, Audience: audienceOf(req.Audience),
		Code: code, Factor: req.Factor, TxID: req.TxID, ClientIP: req.ClientIP, Session: req.Session,
		RememberDevice: req.RememberDevice, DeviceLabel: req.DeviceLabel, DeviceToken: req.DeviceToken,
	})
	s.writeVerifyResult(w, r, res, err)
}

// pollVerification answers whether a pending verification (a push) was
// approved; the host application polls it with the txid verify returned.
func (s *Server) pollVerification(w http.ResponseWriter, r *http.Request) {
	in, ok := pollRemember(w, r)
	if !ok {
		return
	}
	res, err := s.fw.Poll(r.Context(), in)
	s.writeVerifyResult(w, r, res, err)
}

func (s *Server) writeVerifyResult(w http.ResponseWriter, r *http.Request, res framework.VerifyResult, err error) {
	if err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	out := verifyResponse{Outcome: string(res.Outcome), Reason: string(res.Reason), Message: res.Message, TxID: res.TxID,
		DeviceToken: res.DeviceToken, Unprompted: res.Outcome == sdk.Allow && res.Unprompted}
	out.EnrollPortalURL = framework.EnrollPortalURL(res)
	if left, ok := framework.RecoveryCodesLeftAfter(res); ok {
		out.RecoveryCodesLeft = &left
	}
	writeJSON(w, http.StatusOK, out)
}

// reasonText explains a refused confirmation to the caller.
func reasonText(r sdk.Reason) string {
	switch r {
	case sdk.ReasonInvalidCode:
		return "the code is not correct; check the device's clock and try the current code"
	case sdk.ReasonExpired:
		return "the enrollment expired before it was confirmed; begin again"
	case sdk.ReasonReplayed:
		return "that code was already used; wait for the next one"
	case sdk.ReasonInvalidState:
		return "the stored enrollment cannot be used; begin again"
	}
	return "the enrollment was not confirmed"
}
