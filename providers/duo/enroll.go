package duo

import (
	"context"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Enroll runs one enrollment step.
//
// begin asks Duo about the user (preauth, with the host's user id as the
// Duo username): a user Duo already knows ("auth") is enrolled at once, a
// bypass user ("allow") is recorded as such, a denied user is an error
// with Duo's message, and an unknown user ("enroll") is created with
// /enroll, whose activation barcode, link and code are returned to show.
//
// finish asks Duo whether the activation happened (enroll_status):
// success is Done, waiting is not done with ReasonWaiting (the host polls
// again), invalid is not done with ReasonExpired (begin again).
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
		return sdk.EnrollResponse{}, p.enrollError(c, "preauth", err)
	}
	switch pre.Result {
	case authapi.PreauthAuth:
		p.log.Info("enroll: user already enrolled in Duo", "user", username)
		st := &stateV1{Status: statusEnrolled, Username: username}
		return sdk.EnrollResponse{State: st.marshal(), Done: true, Display: sdk.Display{
			Instructions: "You are already enrolled in Duo: you will approve logins with Duo as you do elsewhere.",
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
		return sdk.EnrollResponse{}, p.enrollError(c, "enroll", err)
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
	if st.Status != statusPending {
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
		return sdk.EnrollResponse{}, p.enrollError(c, "enroll_status", err)
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

// enrollError maps a failed Duo call during enrollment, which has no
// failmode: unreachable is KindUnavailable, a refusal of the credentials
// or the clock names the setting, any other refusal is the request's.
func (p *Provider) enrollError(c *config, op string, err error) error {
	p.log.Warn("enroll: "+op+" failed", "api_hostname", c.host, "error", err)
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
