package duo

import (
	"context"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Enroll runs one enrollment step.
//
// begin asks Duo about the user (preauth, with the host's user id as the
// Duo username): a user Duo already knows ("auth") must prove the device
// is theirs with a passcode (status confirming), a bypass user ("allow")
// is recorded as such, a denied user is an error with Duo's message, and
// an unknown user ("enroll") is created with /enroll, whose activation
// barcode, link and code are returned to show.
//
// finish of an activation asks Duo whether it happened (enroll_status):
// success is Done, waiting is not done with ReasonWaiting (the host polls
// again), invalid is not done with ReasonExpired (begin again). finish of
// a confirming user checks req.Code with /auth factor passcode: allow is
// Done, a deny or a code that is not 1 to 64 letters and digits (never
// sent) is not done with ReasonInvalidCode, which the host counts as it
// counts a wrong TOTP code at confirmation.
//
// Enrollment has no failmode: when Duo is unavailable, Enroll returns a
// KindUnavailable error.
func (p *Provider) Enroll(ctx context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	c, err := p.current()
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	if err := checkUsername(req.User.ID); err != nil {
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "user", "user id %s", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switch req.Step {
	case sdk.EnrollBegin:
		return p.enrollBegin(ctx, c, req)
	case sdk.EnrollFinish:
		return p.enrollFinish(ctx, c, req)
	default:
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "step", "unknown enrollment step %q", req.Step)
	}
}

func (p *Provider) enrollBegin(ctx context.Context, c *config, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	username := req.User.ID
	c.ensureOffset(ctx, p.now())
	pre, err := c.client.Preauth(ctx, authapi.PreauthRequest{User: authapi.User{Username: username}})
	if err != nil {
		return sdk.EnrollResponse{}, p.stepError(c, "enroll", "preauth", err)
	}
	switch pre.Result {
	case authapi.PreauthAuth:
		// Duo has a device for this username, which proves nothing about
		// whose it is: whoever once began a setup here as this user (an
		// intruder with the password, before the user had a factor) may
		// have activated it with their own phone. A passcode typed into
		// this setup, which the host let only the user reach, proves it;
		// a push would not: its holder approves it from anywhere.
		p.log.Info("enroll: user known to Duo; a passcode must confirm the device", "user", username)
		st := &stateV1{Status: statusConfirming, Username: username}
		return sdk.EnrollResponse{State: st.marshal(), Display: sdk.Display{
			Instructions: "Duo already has a device for you: to confirm it is yours, enter a passcode from Duo Mobile " +
				"(tap the key icon), from your Duo token or from a Duo text message.",
			// What normalizePasscode accepts: a YubiKey's OTP is 44 letters.
			CodeInput: passcodeInput,
		}}, nil
	case authapi.PreauthAllow:
		p.log.Info("enroll: Duo lets the user in without a second factor (bypass)", "user", username)
		st := &stateV1{Status: statusBypass, Username: username}
		return sdk.EnrollResponse{State: st.marshal(), Done: true, Display: sdk.Display{
			Instructions: "Duo does not ask you for a second factor at the moment: nothing to set up.",
		}}, nil
	case authapi.PreauthDeny:
		msg := pre.StatusMsg
		if msg == "" {
			msg = "the user is not allowed to authenticate"
		}
		return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "user", "Duo refuses this user: %s", msg)
	}
	// PreauthEnroll: Duo does not know the user, or the user has no device.
	en, err := c.client.Enroll(ctx, authapi.EnrollRequest{Username: username})
	if err != nil {
		if e, ok := authapi.AsError(err); ok && authapi.Classify(err) == authapi.ClassRefused && e.Code == authapi.CodeInvalidParams {
			hint := ""
			if pre.EnrollPortalURL != "" {
				hint = "; the user can enroll at " + pre.EnrollPortalURL
			}
			return sdk.EnrollResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "user",
				"Duo cannot create an activation for this user (Duo: %s %s), perhaps because the user already "+
					"exists in Duo without a device%s", e.Message, e.Detail, hint)
		}
		return sdk.EnrollResponse{}, p.stepError(c, "enroll", "enroll", err)
	}
	st := &stateV1{
		Status:         statusPending,
		Username:       username,
		UserID:         en.UserID,
		ActivationCode: en.ActivationCode,
		Expires:        en.Expiration,
	}
	p.log.Info("enroll: activation created", "user", username, "duo_user_id", en.UserID, "expires", en.Expiration)
	return sdk.EnrollResponse{
		State: st.marshal(),
		Display: sdk.Display{
			BarcodeURL:     en.ActivationBarcode,
			ActivationURL:  en.ActivationURL,
			ActivationCode: en.ActivationCode,
			Instructions: "Open Duo Mobile and scan the barcode (or, on this phone, open the activation link), " +
				"then continue here.",
		},
	}, nil
}

func (p *Provider) enrollFinish(ctx context.Context, c *config, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	st, err := parseState(req.State)
	if err != nil {
		return sdk.EnrollResponse{}, err
	}
	if st.Username != req.User.ID {
		return sdk.EnrollResponse{}, stateError("belongs to another user")
	}
	switch st.Status {
	case statusPending:
	case statusConfirming:
		return p.confirmPasscode(ctx, c, st, req.Code)
	default:
		// Already finished: finishing again is harmless.
		return sdk.EnrollResponse{State: st.marshal(), Done: true}, nil
	}
	c.ensureOffset(ctx, p.now())
	status, err := c.client.EnrollStatus(ctx, st.UserID, st.ActivationCode)
	if err != nil {
		if e, ok := authapi.AsError(err); ok && authapi.Classify(err) == authapi.ClassRefused && e.Code == authapi.CodeInvalidParams {
			// Duo no longer knows the activation.
			return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil
		}
		return sdk.EnrollResponse{}, p.stepError(c, "enroll", "enroll_status", err)
	}
	switch status {
	case authapi.EnrollSuccess:
		done := &stateV1{Status: statusEnrolled, Username: st.Username, UserID: st.UserID}
		p.log.Info("enroll: Duo Mobile activated", "user", st.Username)
		return sdk.EnrollResponse{State: done.marshal(), Done: true}, nil
	case authapi.EnrollWaiting:
		return sdk.EnrollResponse{Reason: sdk.ReasonWaiting}, nil
	default: // authapi.EnrollInvalid
		return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil
	}
}

// confirmPasscode finishes the setup of a user Duo already knew: Done only
// when Duo accepts, for the username, the passcode typed into this setup.
func (p *Provider) confirmPasscode(ctx context.Context, c *config, st *stateV1, code string) (sdk.EnrollResponse, error) {
	passcode, ok := normalizePasscode(code)
	if !ok {
		// Not sent to Duo, but a wrong answer all the same: the host counts it.
		return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, nil
	}
	c.ensureOffset(ctx, p.now())
	res, err := c.client.Auth(ctx, authapi.AuthRequest{User: authapi.User{Username: st.Username}, Factor: FactorPasscode, Passcode: passcode})
	if err != nil {
		if e, ok := authapi.AsError(err); ok && authapi.Classify(err) == authapi.ClassRefused && e.Code == authapi.CodeInvalidParams {
			return sdk.EnrollResponse{Reason: sdk.ReasonInvalidCode}, nil
		}
		return sdk.EnrollResponse{}, p.stepError(c, "enroll", "auth", err)
	}
	switch v := result(res, true, ""); {
	case v.Outcome == sdk.Allow && v.Unprompted:
		// Duo now bypasses the user and allows any passcode: no proof. A
		// new begin records the bypass as such.
		p.log.Info("enroll: Duo bypasses the user now; the setup must begin again", "user", st.Username)
		return sdk.EnrollResponse{Reason: sdk.ReasonExpired}, nil
	case v.Outcome == sdk.Allow:
		p.log.Info("enroll: passcode accepted; the Duo device is the user's", "user", st.Username)
		done := &stateV1{Status: statusEnrolled, Username: st.Username}
		return sdk.EnrollResponse{State: done.marshal(), Done: true}, nil
	case v.Outcome == sdk.Deny:
		return sdk.EnrollResponse{Reason: v.Reason}, nil
	}
	// A passcode is decided at once; "waiting" is no answer to it.
	return sdk.EnrollResponse{}, sdk.Errorf(sdk.KindInternal, "duo: Duo answered a passcode with result %q", res.Result)
}

// stepError maps a failed Duo call during a step that has no failmode,
// because it authenticates no one (an enrollment, a request to text
// passcodes): unreachable is KindUnavailable, a refusal of the credentials
// or the clock names the setting, any other refusal is the request's.
func (p *Provider) stepError(c *config, step, op string, err error) error {
	p.log.Warn(step+": "+op+" failed", "api_hostname", c.host, "error", err)
	switch authapi.Classify(err) {
	case authapi.ClassUnavailable:
		return sdk.Errorf(sdk.KindUnavailable, "Duo at %s is unavailable: %v", c.host, err)
	case authapi.ClassCredentials, authapi.ClassClock:
		off, _ := c.client.Offset()
		return c.refusal(op, err, off)
	case authapi.ClassRefused:
		e, _ := authapi.AsError(err)
		return sdk.Errorf(sdk.KindInvalidRequest, "Duo refused %s: %s", op, describe(e))
	}
	return sdk.Errorf(sdk.KindInternal, "duo: %v", err)
}
