package authapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Auth API v2 endpoints, one method each, with their request and
// response shapes checked strictly.

type timeResponse struct {
	Time *int64 `json:"time"`
}

func (r *timeResponse) validate() error {
	if r.Time == nil || *r.Time <= 0 {
		return errors.New("no time in response")
	}
	return nil
}

// Ping calls /auth/v2/ping, which is not signed, and returns Duo's time.
func (c *Client) Ping(ctx context.Context) (time.Time, error) {
	var r timeResponse
	if err := c.call(ctx, http.MethodGet, PathPing, nil, false, &r); err != nil {
		return time.Time{}, err
	}
	return time.Unix(*r.Time, 0), nil
}

// Check calls /auth/v2/check, which Duo answers only if the integration
// key, the secret key, the host name and the request's date are all
// right, and returns Duo's time.
func (c *Client) Check(ctx context.Context) (time.Time, error) {
	var r timeResponse
	if err := c.call(ctx, http.MethodGet, PathCheck, nil, true, &r); err != nil {
		return time.Time{}, err
	}
	return time.Unix(*r.Time, 0), nil
}

// User names a Duo user by username or by Duo user id; exactly one must
// be set.
type User struct {
	Username string
	UserID   string
}

func (u User) set(v url.Values) error {
	switch {
	case u.Username != "" && u.UserID != "":
		return errors.New("authapi: both username and user_id given")
	case u.Username != "":
		v.Set("username", u.Username)
	case u.UserID != "":
		v.Set("user_id", u.UserID)
	default:
		return errors.New("authapi: neither username nor user_id given")
	}
	return nil
}

// PreauthRequest are the parameters of /auth/v2/preauth.
type PreauthRequest struct {
	User
	IPAddr             string
	Hostname           string
	TrustedDeviceToken string
}

// Preauth results.
const (
	PreauthAuth   = "auth"   // the user must authenticate
	PreauthAllow  = "allow"  // the user may skip the second factor (bypass)
	PreauthDeny   = "deny"   // the user may not log in; StatusMsg says why
	PreauthEnroll = "enroll" // the user is unknown to Duo or has no device
)

// PreauthResult is the answer of /auth/v2/preauth.
type PreauthResult struct {
	Result          string   `json:"result"`
	StatusMsg       string   `json:"status_msg"`
	EnrollPortalURL string   `json:"enroll_portal_url"`
	Devices         []Device `json:"devices"`
}

// Device is one of a user's devices as listed by preauth.
type Device struct {
	Device       string   `json:"device"`
	Type         string   `json:"type"`
	Name         string   `json:"name"`
	DisplayName  string   `json:"display_name"`
	Number       string   `json:"number"`
	Capabilities []string `json:"capabilities"`
	// SMSNextcode, for an sms-capable device, is the first digit of the
	// next SMS passcode to use.
	SMSNextcode string `json:"sms_nextcode"`
}

func (r *PreauthResult) validate() error {
	switch r.Result {
	case PreauthAuth, PreauthAllow, PreauthDeny, PreauthEnroll:
	default:
		return fmt.Errorf("unknown preauth result %q", clean(r.Result))
	}
	r.StatusMsg = clean(r.StatusMsg)
	return nil
}

// Preauth calls /auth/v2/preauth.
func (c *Client) Preauth(ctx context.Context, req PreauthRequest) (*PreauthResult, error) {
	v := url.Values{}
	if err := req.User.set(v); err != nil {
		return nil, err
	}
	setIf(v, "ipaddr", req.IPAddr)
	setIf(v, "hostname", req.Hostname)
	setIf(v, "trusted_device_token", req.TrustedDeviceToken)
	var r PreauthResult
	if err := c.call(ctx, http.MethodPost, PathPreauth, v, true, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Factors for AuthRequest.Factor.
const (
	FactorAuto     = "auto"
	FactorPush     = "push"
	FactorPasscode = "passcode"
	FactorPhone    = "phone"
	FactorSMS      = "sms"
)

// AuthRequest are the parameters of /auth/v2/auth.
type AuthRequest struct {
	User
	Factor   string
	IPAddr   string
	Hostname string
	// Device is a device id or "auto"; it is sent as "auto" for the
	// auto, push and phone factors when empty, and never for passcodes.
	Device          string
	Type            string // shown in the push, e.g. "Login request"
	DisplayUsername string // shown in Duo Mobile instead of the username
	PushInfo        string // URL-encoded k=v pairs shown with the push
	Passcode        string
}

func (r AuthRequest) values(async bool) (url.Values, error) {
	v := url.Values{}
	if err := r.User.set(v); err != nil {
		return nil, err
	}
	switch r.Factor {
	case FactorPasscode:
		if r.Passcode == "" {
			return nil, errors.New("authapi: passcode factor without a passcode")
		}
		v.Set("passcode", r.Passcode)
	case FactorAuto, FactorPush, FactorPhone, FactorSMS:
		if r.Passcode != "" {
			return nil, errors.New("authapi: passcode given with another factor")
		}
		d := r.Device
		if d == "" {
			d = "auto"
		}
		v.Set("device", d)
	default:
		return nil, fmt.Errorf("authapi: unknown factor %q", r.Factor)
	}
	v.Set("factor", r.Factor)
	setIf(v, "ipaddr", r.IPAddr)
	setIf(v, "hostname", r.Hostname)
	setIf(v, "type", r.Type)
	setIf(v, "display_username", r.DisplayUsername)
	setIf(v, "pushinfo", r.PushInfo)
	if async {
		v.Set("async", "1")
	}
	return v, nil
}

// Auth results and statuses.
const (
	ResultAllow   = "allow"
	ResultDeny    = "deny"
	ResultWaiting = "waiting" // auth_status only

	StatusFraud     = "fraud"
	StatusTimeout   = "timeout"
	StatusLockedOut = "locked_out"
	StatusDeny      = "deny"
	StatusAllow     = "allow"
	StatusBypass    = "bypass"
	StatusPushed    = "pushed"
	StatusPushFail  = "push_failed"
	StatusSent      = "sent" // factor sms: Duo texted new passcodes (result deny)
)

// AuthResult is the answer of a synchronous /auth/v2/auth or of
// /auth/v2/auth_status.
type AuthResult struct {
	Result             string `json:"result"` // allow, deny, or (auth_status) waiting
	Status             string `json:"status"` // e.g. allow, deny, fraud, timeout, locked_out, pushed
	StatusMsg          string `json:"status_msg"`
	TrustedDeviceToken string `json:"trusted_device_token"`
}

func (r *AuthResult) validate(waitingOK bool) error {
	switch r.Result {
	case ResultAllow:
		// An allow must say what kind (allow, bypass): one that does not
		// is not an answer to trust.
		if strings.TrimSpace(r.Status) == "" {
			return errors.New(`auth result "allow" without a status`)
		}
	case ResultDeny:
	case ResultWaiting:
		if !waitingOK {
			return errors.New(`auth result "waiting" from a synchronous call`)
		}
	default:
		return fmt.Errorf("unknown auth result %q", clean(r.Result))
	}
	r.Status = clean(r.Status)
	r.StatusMsg = clean(r.StatusMsg)
	return nil
}

type authSyncResponse struct{ AuthResult }

func (r *authSyncResponse) validate() error { return r.AuthResult.validate(false) }

type authStatusResponse struct{ AuthResult }

func (r *authStatusResponse) validate() error { return r.AuthResult.validate(true) }

// Auth calls /auth/v2/auth synchronously: Duo answers when the
// authentication is over, which for a passcode is at once and for a push
// only when the user responds. Use AuthAsync for anything but passcodes.
func (c *Client) Auth(ctx context.Context, req AuthRequest) (*AuthResult, error) {
	v, err := req.values(false)
	if err != nil {
		return nil, err
	}
	var r authSyncResponse
	if err := c.call(ctx, http.MethodPost, PathAuth, v, true, &r); err != nil {
		return nil, err
	}
	return &r.AuthResult, nil
}

type asyncResponse struct {
	TxID string `json:"txid"`
}

func (r *asyncResponse) validate() error {
	if !ValidTxID(r.TxID) {
		return errors.New("missing or malformed txid")
	}
	return nil
}

// ValidTxID reports whether s looks like a Duo transaction id (a UUID in
// practice; accepted: 1 to 128 letters, digits and '-').
func ValidTxID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// AuthAsync calls /auth/v2/auth with async=1 and returns the transaction
// id to poll with AuthStatus.
func (c *Client) AuthAsync(ctx context.Context, req AuthRequest) (string, error) {
	v, err := req.values(true)
	if err != nil {
		return "", err
	}
	var r asyncResponse
	if err := c.call(ctx, http.MethodPost, PathAuth, v, true, &r); err != nil {
		return "", err
	}
	return r.TxID, nil
}

// AuthStatus calls /auth/v2/auth_status for a transaction started by
// AuthAsync. Duo long-polls: it may answer only when the status changes,
// so a call that ends with the context's deadline before any status line
// arrived (IsTimeout) means the user has not answered yet rather than that
// Duo is down. Once a status line arrived the server has answered: a body
// that then stalls until the deadline is no long poll (see Classify).
func (c *Client) AuthStatus(ctx context.Context, txid string) (*AuthResult, error) {
	if !ValidTxID(txid) {
		return nil, errors.New("authapi: malformed txid")
	}
	var r authStatusResponse
	if err := c.call(ctx, http.MethodGet, PathAuthStatus, url.Values{"txid": {txid}}, true, &r); err != nil {
		return nil, err
	}
	return &r.AuthResult, nil
}

// EnrollRequest are the parameters of /auth/v2/enroll.
type EnrollRequest struct {
	Username  string // the new user's name; Duo picks one when empty
	ValidSecs int    // how long the activation is valid; 0 means Duo's default
}

// EnrollResult is the answer of /auth/v2/enroll.
type EnrollResult struct {
	ActivationBarcode string `json:"activation_barcode"` // URL of a QR code image
	ActivationCode    string `json:"activation_code"`    // to type or tap in Duo Mobile
	ActivationURL     string `json:"activation_url"`     // to open on the phone
	Expiration        int64  `json:"expiration"`         // Unix time
	UserID            string `json:"user_id"`
	Username          string `json:"username"`
}

func (r *EnrollResult) validate() error {
	switch {
	case r.ActivationBarcode == "":
		return errors.New("enroll response has no activation_barcode")
	case r.ActivationCode == "":
		return errors.New("enroll response has no activation_code")
	case r.UserID == "":
		return errors.New("enroll response has no user_id")
	case r.Expiration < 0:
		return errors.New("enroll response has a negative expiration")
	}
	return nil
}

// Enroll calls /auth/v2/enroll, which creates a user with a pending
// activation of Duo Mobile.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (*EnrollResult, error) {
	v := url.Values{}
	setIf(v, "username", req.Username)
	if req.ValidSecs > 0 {
		v.Set("valid_secs", strconv.Itoa(req.ValidSecs))
	}
	var r EnrollResult
	if err := c.call(ctx, http.MethodPost, PathEnroll, v, true, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Enrollment statuses.
const (
	EnrollSuccess = "success" // Duo Mobile was activated
	EnrollWaiting = "waiting" // not yet
	EnrollInvalid = "invalid" // the activation expired or is unknown
)

type enrollStatusResponse string

func (r *enrollStatusResponse) validate() error {
	switch *r {
	case EnrollSuccess, EnrollWaiting, EnrollInvalid:
		return nil
	}
	return fmt.Errorf("unknown enrollment status %q", clean(string(*r)))
}

// EnrollStatus calls /auth/v2/enroll_status and returns success, waiting
// or invalid.
func (c *Client) EnrollStatus(ctx context.Context, userID, activationCode string) (string, error) {
	if userID == "" || activationCode == "" {
		return "", errors.New("authapi: enroll_status needs a user id and an activation code")
	}
	v := url.Values{"user_id": {userID}, "activation_code": {activationCode}}
	var r enrollStatusResponse
	if err := c.call(ctx, http.MethodPost, PathEnrollStatus, v, true, &r); err != nil {
		return "", err
	}
	return string(r), nil
}

func setIf(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}
