package duo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// SMS passcodes. A user whose phone has no Duo Mobile (and who has no
// token) can still sign in with passcodes Duo texts: Challenge of factor
// sms asks Duo (/auth factor sms) to text a new batch to the user's
// sms-capable device, which Duo answers with result deny, status "sent"
// (the text authenticates no one); Verify with the challenge's TxID then
// checks the typed passcode with /auth factor passcode. Duo keeps the
// passcodes and spends each once, so the state does not change.
//
// A text is not an authentication: the failmode never applies to it. Any
// failure (Duo unreachable, hung, a refusal, an answer other than "sent")
// is an error, and nothing is claimed sent.

const (
	// smsTxPrefix starts the TxID of a text. Duo's own transaction ids
	// (pushes) are UUIDs, which never start with it.
	smsTxPrefix = "sms-"
	// smsExpires is how long a challenge's passcodes are asked for; Duo's
	// passcodes outlive it (the host caps transactions at 5 minutes too).
	smsExpires = 5 * time.Minute
	// smsResendAfter is the earliest new text: texts arrive in seconds,
	// and each one replaces the last batch.
	smsResendAfter = 30 * time.Second
)

// isSMSTxID reports whether id is the TxID of a text (newSMSTxID).
func isSMSTxID(id string) bool {
	h, ok := strings.CutPrefix(id, smsTxPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func newSMSTxID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return smsTxPrefix + hex.EncodeToString(b)
}

// Challenge asks Duo to text passcodes to the user's sms-capable device
// (factor sms), at sign-in or to confirm the setup of a user Duo already
// knew (the passcode then goes to Enroll finish). It is an error for a user without one, for a user Duo
// bypasses, denies or wants enrolled, and for any failed call to Duo.
func (p *Provider) Challenge(ctx context.Context, req sdk.ChallengeRequest) (sdk.ChallengeResponse, error) {
	c, err := p.current()
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	if err := capabilities.CheckFactor(req.Factor); err != nil {
		return sdk.ChallengeResponse{}, err
	}
	if req.Factor != FactorSMS {
		return sdk.ChallengeResponse{}, sdk.FieldError(sdk.KindInvalidRequest, "factor", "factor %q needs no challenge: verify it directly", req.Factor)
	}
	st, err := parseState(req.State)
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	if req.User.ID != "" && req.User.ID != st.Username {
		return sdk.ChallengeResponse{}, stateError("belongs to another user")
	}
	if st.Status != statusEnrolled && st.Status != statusConfirming {
		// A pending activation has no device yet; a bypass user has
		// nothing to type. A confirming setup (a user Duo already knew)
		// is texted: the device Duo holds gets the passcodes, and only
		// one typed into this setup, which the host let only the user
		// reach, proves it is the user's (confirmPasscode).
		return sdk.ChallengeResponse{}, stateError("the Duo enrollment is not one Duo texts passcodes for")
	}
	ip, err := clientIP(req.ClientIP)
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	message, err := p.text(ctx, c, st.Username, ip)
	if err != nil {
		return sdk.ChallengeResponse{}, err
	}
	return sdk.ChallengeResponse{TxID: newSMSTxID(), Message: message,
		ExpiresAt: req.Now.Add(smsExpires), ResendAfter: req.Now.Add(smsResendAfter)}, nil
}

// text asks Duo to text a new batch of passcodes to username's first
// sms-capable device as preauth lists them, and returns the sentence for
// the user.
func (p *Provider) text(ctx context.Context, c *config, username, ip string) (string, error) {
	user := authapi.User{Username: username}
	c.ensureOffset(ctx, p.now())
	pre, err := c.client.Preauth(ctx, authapi.PreauthRequest{User: user, IPAddr: ip})
	if err != nil {
		return "", p.textError(c, "preauth", err)
	}
	switch pre.Result {
	case authapi.PreauthAllow:
		return "", sdk.FieldError(sdk.KindInvalidRequest, "factor", "Duo lets this user in without a passcode (bypass): nothing to text")
	case authapi.PreauthDeny:
		return "", sdk.FieldError(sdk.KindInvalidRequest, "user", "Duo does not let this user sign in: %s", orDefault(pre.StatusMsg, "denied"))
	case authapi.PreauthEnroll:
		return "", sdk.FieldError(sdk.KindInvalidRequest, "user", "Duo has no device for this user any more: the user must enroll with Duo")
	}
	i := slices.IndexFunc(pre.Devices, func(d authapi.Device) bool { return slices.Contains(d.Capabilities, authapi.FactorSMS) })
	if i < 0 {
		return "", sdk.FieldError(sdk.KindInvalidRequest, "factor",
			"none of this user's Duo devices can receive text messages: use Duo Mobile, a Duo token or a bypass code")
	}
	dev := pre.Devices[i]
	res, err := c.client.Auth(ctx, authapi.AuthRequest{User: user, Factor: authapi.FactorSMS, Device: dev.Device, IPAddr: ip})
	if err != nil {
		return "", p.textError(c, "auth", err)
	}
	switch {
	case res.Result == authapi.ResultDeny && res.Status == authapi.StatusSent:
	case res.Result == authapi.ResultAllow:
		// A text authenticates no one: an allow is no answer to it.
		p.log.Error("text: Duo answered a request to text passcodes with allow", "user", username, "status", res.Status)
		return "", sdk.Errorf(sdk.KindInternal, "duo: Duo answered a request to text passcodes with %q, not %q", res.Result, authapi.StatusSent)
	default:
		p.log.Warn("text: Duo did not text passcodes", "user", username, "status", res.Status, "status_msg", res.StatusMsg)
		return "", sdk.Errorf(sdk.KindUnavailable, "Duo did not text passcodes (status %q): %s", res.Status, orDefault(res.StatusMsg, "no reason given"))
	}
	p.log.Info("text: Duo texted passcodes", "user", username)
	return "Duo texted passcodes to " + phoneName(dev) + ". Enter one of them.", nil
}

// textError maps a failed call of a text request, as stepError, except
// that an answer that is not Duo's (malformed, empty) is Duo's fault, not
// the request's: unavailable, like a 5xx.
func (p *Provider) textError(c *config, op string, err error) error {
	if e, ok := authapi.AsError(err); ok && e.Malformed && authapi.Classify(err) == authapi.ClassRefused {
		p.log.Warn("text: "+op+" answered malformed", "api_hostname", c.host, "error", err)
		return sdk.Errorf(sdk.KindUnavailable, "Duo at %s gave no usable answer to the %s of a text request: %s", c.host, op, describe(e))
	}
	return p.stepError(c, "text", op, err)
}

// phoneName names a device for the user without its number: the last
// four digits at most.
func phoneName(d authapi.Device) string {
	n := d.Number
	if len(n) >= 4 {
		last := n[len(n)-4:]
		if strings.Trim(last, "0123456789") == "" {
			return "your phone ending in " + last
		}
	}
	return "your phone"
}
