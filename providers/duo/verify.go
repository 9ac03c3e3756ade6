package duo

import (
	"context"
	"net"
	"net/url"
	"strings"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Duo's denials map onto the sdk vocabulary: fraud (marked fraudulent in
// Duo Mobile), timeout (unanswered), locked_out (by Duo), and
// denied_by_policy (preauth said deny; Message carries Duo's status_msg).
const (
	ReasonFraud          = sdk.ReasonFraud
	ReasonTimeout        = sdk.ReasonTimeout
	ReasonLockedOut      = sdk.ReasonLockedOut
	ReasonDeniedByPolicy = sdk.ReasonDeniedByPolicy
)

// Factors accepted in VerifyRequest.Factor.
const (
	FactorAuto     = "auto"     // Duo chooses (push when the user has Duo Mobile); a typed code means passcode
	FactorPush     = "push"     // Duo Push, asynchronous
	FactorPasscode = "passcode" // a code from Duo Mobile, a hardware token, SMS or a bypass code
	// FactorSMS: passcodes Duo texts to the user's phone, after a
	// Challenge (sms.go); the typed one is checked as a passcode.
	FactorSMS = "sms"
)

// maxPasscodeLen bounds a passcode (YubiKey OTPs are 44 characters).
const maxPasscodeLen = 64

// passcodeInput is what normalizePasscode accepts, for the host's field:
// letters too, as a YubiKey's OTP is 44 of them.
var passcodeInput = sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: maxPasscodeLen, Label: "Duo passcode"}

// Verify checks a user's answer:
//
//   - a passcode (Factor "passcode", or a Code with Factor "" or "auto") is
//     checked synchronously with /auth: allow or deny;
//   - a push (Factor "push", or "auto"/"" without a Code) is started with
//     an asynchronous /auth: Pending with a TxID and ReasonWaiting;
//   - a TxID polls that push with /auth_status: Pending, Allow or Deny.
//
// New verifications start with a preauth, which carries the request's
// TrustToken (Duo's trusted_device_token from an earlier allow on this
// device) when there is one: a bypass user is allowed (Details "duo":
// "bypass"), so is a device Duo still remembers ("remembered_device"),
// both Unprompted; a denied user is denied. An allow answered on a device
// returns Duo's trusted_device_token, if Duo's Remembered Devices policy
// gave one, as TrustToken. Denials carry Duo's
// reason: invalid_code, denied_by_user, fraud, timeout, locked_out,
// denied_by_policy. When Duo cannot be reached the failmode decides: secure
// denies with ReasonUnavailable, safe allows with ReasonFailmodeSafe; an
// answer whose status line arrived is never that (see failed). A push poll
// that reaches the timeout before any status line is still Pending: Duo
// long-polls.
// Every call is bounded by the timeout setting.
func (p *Provider) Verify(ctx context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	c, err := p.current()
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	st, err := parseState(req.State)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	if st.Status == statusPending || st.Status == statusConfirming {
		// Not the user's factor yet: a confirming user's device is Duo's
		// (perhaps someone else's) until a passcode proved it.
		return sdk.VerifyResponse{}, stateError("the Duo enrollment is not finished")
	}
	if req.User.ID != "" && req.User.ID != st.Username {
		return sdk.VerifyResponse{}, stateError("belongs to another user")
	}
	factor, err := pickFactor(req)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	ip, err := clientIP(req.ClientIP)
	if err != nil {
		return sdk.VerifyResponse{}, err
	}
	if !validTrustToken(req.TrustToken) {
		return sdk.VerifyResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "trust_token", "not a token Duo issued")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	if factor == FactorSMS {
		if req.Code == "" {
			// A poll of the challenge: the user has not typed a passcode yet.
			return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: req.TxID,
				Message: "waiting for a passcode Duo texted"}, nil
		}
		factor = FactorPasscode // Duo checks a texted passcode as any other
	} else if req.TxID != "" {
		if !authapi.ValidTxID(req.TxID) {
			return sdk.VerifyResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "txid", "malformed transaction id")
		}
		return p.poll(ctx, c, st, req.TxID)
	}
	passcode := ""
	if factor == FactorPasscode {
		var ok bool
		if passcode, ok = normalizePasscode(req.Code); !ok {
			return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode,
				Message: "passcode is not 1 to 64 letters and digits"}, nil
		}
	}

	user := authapi.User{Username: st.Username}
	c.ensureOffset(ctx, p.now())
	pre, err := c.client.Preauth(ctx, authapi.PreauthRequest{User: user, IPAddr: ip, TrustedDeviceToken: req.TrustToken})
	if err != nil {
		return p.failed(c, st, "preauth", err)
	}
	switch pre.Result {
	case authapi.PreauthAllow:
		if req.TrustToken != "" {
			// Duo answers allow for a bypass user too; with a token sent, a
			// remembered device is what Duo documents.
			p.log.Info("verify: Duo remembers this device", "user", st.Username)
			return sdk.VerifyResponse{Outcome: sdk.Allow, Unprompted: true, Message: orDefault(pre.StatusMsg, "Duo remembers this device"),
				Details: map[string]string{"duo": "remembered_device"}}, nil
		}
		p.log.Info("verify: Duo bypass", "user", st.Username)
		return sdk.VerifyResponse{Outcome: sdk.Allow, Unprompted: true, Message: "Duo lets this user in without a second factor (bypass)",
			Details: map[string]string{"duo": "bypass"}}, nil
	case authapi.PreauthDeny:
		// Duo's status_msg says why; it goes to the audit log for the admin.
		details := map[string]string{"duo": "preauth_deny"}
		if pre.StatusMsg != "" {
			details["status_msg"] = pre.StatusMsg
		}
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: ReasonDeniedByPolicy,
			Message: orDefault(pre.StatusMsg, "Duo does not let this user log in"), Details: details}, nil
	case authapi.PreauthEnroll:
		return enrollRequired(pre), nil
	}

	ar := authapi.AuthRequest{User: user, Factor: factor, IPAddr: ip, PushInfo: c.pushInfo}
	if c.displayUsername && factor != FactorPasscode {
		ar.DisplayUsername = req.User.Label()
		if ar.DisplayUsername == "" {
			ar.DisplayUsername = st.Username
		}
	}
	if factor == FactorPasscode {
		ar.Passcode = passcode
		res, err := c.client.Auth(ctx, ar)
		if err != nil {
			if e, ok := authapi.AsError(err); ok && authapi.Classify(err) == authapi.ClassRefused && e.Code == authapi.CodeInvalidParams {
				return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode,
					Message: "Duo refused the passcode: " + describe(e)}, nil
			}
			return p.failed(c, st, "auth", err)
		}
		return result(res, true, ""), nil
	}
	txid, err := c.client.AuthAsync(ctx, ar)
	if err != nil {
		return p.failed(c, st, "auth", err)
	}
	p.log.Debug("verify: push started", "user", st.Username, "txid", txid)
	return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: txid,
		Message: "waiting for the user to answer in Duo Mobile"}, nil
}

// poll asks Duo for the status of a started push.
func (p *Provider) poll(ctx context.Context, c *config, st *stateV1, txid string) (sdk.VerifyResponse, error) {
	c.ensureOffset(ctx, p.now())
	res, err := c.client.AuthStatus(ctx, txid)
	if err != nil {
		if authapi.IsTimeout(err) {
			// Duo answers auth_status only when the status changes: no
			// answer within the timeout (not even a status line) means
			// the user has not answered.
			return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: txid,
				Message: "waiting for the user to answer in Duo Mobile"}, nil
		}
		if e, ok := authapi.AsError(err); ok && authapi.Classify(err) == authapi.ClassRefused && e.Code == authapi.CodeInvalidParams {
			return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonExpired,
				Message: "Duo does not know this transaction (expired or never started)"}, nil
		}
		return p.failed(c, st, "auth_status", err)
	}
	return result(res, false, txid), nil
}

// result turns Duo's answer into a VerifyResponse.
func result(r *authapi.AuthResult, passcode bool, txid string) sdk.VerifyResponse {
	details := map[string]string{}
	if r.Status != "" {
		details["duo_status"] = r.Status
	}
	switch r.Result {
	case authapi.ResultAllow:
		if r.Status == authapi.StatusBypass {
			details["duo"] = "bypass"
			return sdk.VerifyResponse{Outcome: sdk.Allow, Unprompted: true, Message: orDefault(r.StatusMsg, "approved"), Details: details}
		}
		out := sdk.VerifyResponse{Outcome: sdk.Allow, Message: orDefault(r.StatusMsg, "approved"), Details: details}
		if validTrustToken(r.TrustedDeviceToken) {
			out.TrustToken = r.TrustedDeviceToken
		}
		return out
	case authapi.ResultWaiting:
		return sdk.VerifyResponse{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting, TxID: txid,
			Message: orDefault(r.StatusMsg, "waiting for the user to answer in Duo Mobile"), Details: details}
	}
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: denyReason(r.Status, passcode),
		Message: orDefault(r.StatusMsg, "denied"), Details: details}
}

// denyReason maps Duo's status of a denied authentication.
func denyReason(status string, passcode bool) sdk.Reason {
	switch status {
	case authapi.StatusFraud:
		return ReasonFraud
	case authapi.StatusTimeout:
		return ReasonTimeout
	case authapi.StatusLockedOut:
		return ReasonLockedOut
	case authapi.StatusPushFail:
		return sdk.ReasonUnavailable
	}
	if passcode {
		return sdk.ReasonInvalidCode
	}
	return sdk.ReasonDeniedByUser
}

// enrollRequired is the deny for a user Duo wants enrolled first: with
// Duo's enroll_portal_url, when it gave one that is an https URL, for the
// host to pass on to the user.
func enrollRequired(pre *authapi.PreauthResult) sdk.VerifyResponse {
	out := sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonEnrollmentRequired,
		Message: "Duo does not know this user or the user has no device any more: the user must enroll with Duo",
		Details: map[string]string{"duo": "preauth_enroll"}}
	if u := portalURL(pre.EnrollPortalURL); u != "" {
		out.Details[sdk.DetailEnrollPortalURL] = u
		out.Message += " at " + u
	}
	return out
}

// portalURL returns u if it is an absolute https URL without user info of
// reasonable length, else "": it is shown to users as a link.
func portalURL(u string) string {
	if len(u) > 2048 || strings.ContainsAny(u, " \t\r\n\"<>") {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
		return ""
	}
	return p.String()
}

// failed handles a failed Duo call during Verify, by the classification of
// authapi.Classify: only an unreachable Duo is left to the failmode; a
// refusal of the credentials or the clock is an error for the admin (the
// host answers 503 and audits it); any other definite answer is a deny,
// ReasonBackendRefused: a Duo that answers is not an outage.
func (p *Provider) failed(c *config, st *stateV1, op string, err error) (sdk.VerifyResponse, error) {
	switch authapi.Classify(err) {
	case authapi.ClassCredentials, authapi.ClassClock:
		p.log.Error("verify: Duo refused the credentials", "op", op, "error", err)
		off, _ := c.client.Offset()
		return sdk.VerifyResponse{}, c.refusal(op, err, off)
	case authapi.ClassRefused:
		e, _ := authapi.AsError(err)
		p.log.Warn("verify: Duo refused the request; denied", "user", st.Username, "op", op, "error", err)
		return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonBackendRefused,
			Message: "Duo refused the " + op + ": " + describe(e),
			Details: map[string]string{"duo_error": e.Error(), "duo_op": op}}, nil
	case authapi.ClassUnavailable:
	default:
		return sdk.VerifyResponse{}, sdk.Errorf(sdk.KindInternal, "duo: %v", err)
	}
	details := map[string]string{"failmode": c.failmode, "duo_error": err.Error(), "duo_op": op}
	if c.failmode == failmodeSafe {
		p.log.Warn("verify: Duo unavailable, failmode safe allows without a second factor",
			"user", st.Username, "op", op, "error", err)
		return sdk.VerifyResponse{Outcome: sdk.Allow, Reason: sdk.ReasonFailmodeSafe, Details: details,
			Message: "Duo is unavailable; failmode safe lets the user in without a second factor"}, nil
	}
	p.log.Warn("verify: Duo unavailable, failmode secure denies", "user", st.Username, "op", op, "error", err)
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonUnavailable, Details: details,
		Message: "Duo is unavailable; failmode secure denies the login"}, nil
}

// pickFactor chooses the interaction for a request.
func pickFactor(req sdk.VerifyRequest) (string, error) {
	sms := isSMSTxID(req.TxID)
	switch req.Factor {
	case "", FactorAuto:
		if sms {
			return FactorSMS, nil
		}
		if req.Code != "" && req.TxID == "" {
			return FactorPasscode, nil
		}
		return FactorAuto, nil
	case FactorPush:
		if req.Code != "" {
			return "", sdk.FieldError(sdk.KindInvalidRequest, "code", "a code cannot be given with factor push")
		}
		return FactorPush, nil
	case FactorPasscode:
		if req.TxID != "" {
			return "", sdk.FieldError(sdk.KindInvalidRequest, "txid", "a passcode is verified at once; there is no transaction to poll")
		}
		return FactorPasscode, nil
	case FactorSMS:
		if !sms {
			return "", sdk.FieldError(sdk.KindInvalidRequest, "txid", "sms passcodes are texted first: start a verification, then verify with its txid")
		}
		return FactorSMS, nil
	}
	return "", sdk.FieldError(sdk.KindInvalidRequest, "factor", "unsupported factor %q (use auto, push, passcode or sms)", req.Factor)
}

// clientIP returns the address to send as ipaddr, or "".
func clientIP(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	h := s
	if host, _, err := net.SplitHostPort(s); err == nil {
		h = host
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	if ip == nil {
		return "", sdk.FieldError(sdk.KindInvalidRequest, "client_ip", "%q is not an IP address", s)
	}
	return ip.String(), nil
}

// normalizePasscode removes ASCII spaces and accepts 1 to 64 ASCII
// letters and digits (Duo Mobile and token codes are digits; YubiKey OTPs
// are letters).
func normalizePasscode(code string) (string, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if code == "" || len(code) > maxPasscodeLen {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", false
		}
	}
	return code, true
}

// maxTrustToken bounds a trusted_device_token. Duo's are opaque strings
// of some tens of characters; this leaves room and keeps junk out of the
// store and of preauth's signed parameters.
const maxTrustToken = 1024

// validTrustToken accepts "" (none) or up to maxTrustToken printable ASCII
// characters without spaces.
func validTrustToken(t string) bool {
	if len(t) > maxTrustToken {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
