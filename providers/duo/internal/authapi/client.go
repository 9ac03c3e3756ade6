package authapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Endpoint paths.
const (
	PathPing         = "/auth/v2/ping"
	PathCheck        = "/auth/v2/check"
	PathEnroll       = "/auth/v2/enroll"
	PathEnrollStatus = "/auth/v2/enroll_status"
	PathPreauth      = "/auth/v2/preauth"
	PathAuth         = "/auth/v2/auth"
	PathAuthStatus   = "/auth/v2/auth_status"
)

// DefaultMaxResponseBytes caps a response body. Duo's largest Auth API
// answer (a preauth listing many devices) is a few kilobytes.
const DefaultMaxResponseBytes = 1 << 20

// DefaultRetryAfter is the wait before retrying a 429 that carries no
// usable Retry-After header: the first back-off step of Duo's own clients.
const DefaultRetryAfter = time.Second

// MaxRetryAfter is the longest wait honoured for a 429, even when the
// context has no deadline or a later one.
const MaxRetryAfter = 30 * time.Second

// Config configures a Client.
type Config struct {
	IntegrationKey string
	SecretKey      string
	// Host is the API hostname, "api-XXXXXXXX.duosecurity.com", or any
	// host[:port] (an emulator). The scheme is always https. It is signed
	// lower-cased, exactly as Duo's clients sign it.
	Host string
	// RootCAs, when set, replaces the system roots for verifying the
	// server's certificate.
	RootCAs *x509.CertPool
	// Now is the local clock; nil means time.Now. Requests are signed with
	// Now() plus the offset measured by MeasureOffset.
	Now func() time.Time
	// UserAgent is sent with every request.
	UserAgent string
	// MaxResponseBytes caps response bodies; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Transport, when set, is used instead of a TLS transport built from
	// RootCAs (tests, proxies).
	Transport http.RoundTripper
}

// Client calls Duo's Auth API v2. It is safe for concurrent use. Every
// call takes a context and returns when it ends; callers bound calls with
// a deadline.
type Client struct {
	ikey    string
	skey    []byte
	host    string
	ua      string
	maxBody int64
	now     func() time.Time
	httpc   *http.Client

	offset     atomic.Int64 // Duo's clock minus the local clock, in nanoseconds
	measuredAt atomic.Int64 // local Unix nanoseconds of the last measurement; 0 = never

	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Client. It checks only the shape of cfg; Check tells
// whether Duo accepts the keys.
func New(cfg Config) (*Client, error) {
	if cfg.IntegrationKey == "" {
		return nil, errors.New("authapi: no integration key")
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("authapi: no secret key")
	}
	if err := checkHost(cfg.Host); err != nil {
		return nil, err
	}
	c := &Client{
		ikey:    cfg.IntegrationKey,
		skey:    []byte(cfg.SecretKey),
		host:    cfg.Host,
		ua:      cfg.UserAgent,
		maxBody: cfg.MaxResponseBytes,
		now:     cfg.Now,
		sleep:   sleepCtx,
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ua == "" {
		c.ua = "twofactor-duo-authapi"
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		tr = t
	}
	c.httpc = &http.Client{
		Transport: tr,
		// The Auth API never redirects; following one would send the
		// signed request (and a passcode) somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// checkHost accepts host or host:port, nothing else.
func checkHost(h string) error {
	if h == "" {
		return errors.New("authapi: no API hostname")
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("authapi: API hostname %q is not a host[:port]", h)
	}
	if _, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("authapi: API hostname %q has a bad port", h)
		}
	}
	return nil
}

// String describes the client without its secret key.
func (c *Client) String() string {
	return fmt.Sprintf("authapi.Client{host: %s, ikey: %s}", c.host, c.ikey)
}

// GoString is String, so that %#v does not print the secret key either.
func (c *Client) GoString() string { return c.String() }

// Host returns the API hostname requests go to.
func (c *Client) Host() string { return c.host }

// CloseIdleConnections closes the client's idle connections; call it when
// replacing a Client.
func (c *Client) CloseIdleConnections() { c.httpc.CloseIdleConnections() }

// Offset returns the clock offset in use (Duo's time minus the local
// time; positive when Duo is ahead) and when it was measured, or a zero
// time if it never was.
func (c *Client) Offset() (time.Duration, time.Time) {
	off := time.Duration(c.offset.Load())
	at := c.measuredAt.Load()
	if at == 0 {
		return off, time.Time{}
	}
	return off, time.Unix(0, at)
}

// SetOffset sets the clock offset used for signing, as if measured at the
// local time at (a zero at means never measured).
func (c *Client) SetOffset(d time.Duration, at time.Time) {
	c.offset.Store(int64(d))
	if at.IsZero() {
		c.measuredAt.Store(0)
		return
	}
	c.measuredAt.Store(at.UnixNano())
}

// duoNow is the local clock corrected by the measured offset.
func (c *Client) duoNow() time.Time {
	return c.now().Add(time.Duration(c.offset.Load()))
}

// MeasureOffset asks Duo for its time with the unsigned ping, so that it
// works however far off the local clock is, and stores Duo's time minus
// the local time as the offset every later request is signed with. Duo's
// time has whole seconds, so the result is accurate to about half a second
// plus half the round trip.
func (c *Client) MeasureOffset(ctx context.Context) (time.Duration, error) {
	t0 := c.now()
	duo, err := c.Ping(ctx)
	if err != nil {
		return 0, err
	}
	t1 := c.now()
	mid := t0.Add(t1.Sub(t0) / 2)
	// Duo's time is truncated to the second: its mean is half a second on.
	off := duo.Add(500 * time.Millisecond).Sub(mid)
	c.SetOffset(off, t1)
	return off, nil
}

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
	case ResultAllow, ResultDeny:
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
// so a call that ends with the context's deadline (IsTimeout) means the
// user has not answered yet rather than that Duo is down.
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

// validator is implemented by every response type.
type validator interface{ validate() error }

// call makes one API call and decodes the response into out. A 429 is
// retried once, with a fresh Date and signature and the full body, when
// the wait it asks for ends before the context's deadline.
func (c *Client) call(ctx context.Context, method, path string, params url.Values, signed bool, out validator) error {
	op := method + " " + path
	for attempt := 0; ; attempt++ {
		status, hdr, body, err := c.do(ctx, method, path, params, signed)
		if err == nil && ctx.Err() != nil {
			// The deadline passed while the answer came in: too late.
			err = errors.New("response arrived after the deadline")
		}
		if err != nil {
			if ctx.Err() != nil {
				// Report the context's own error, so that callers can
				// tell a deadline (errors.Is context.DeadlineExceeded).
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return &UnavailableError{Op: op, HTTPStatus: status, Err: err}
		}
		if status == http.StatusTooManyRequests {
			wait := retryAfter(hdr, c.duoNow())
			fail := failFromBody(status, body)
			fail.RetryAfter = wait
			if attempt == 0 && fits(ctx, wait) {
				if err := c.sleep(ctx, wait); err == nil {
					continue
				}
			}
			return &UnavailableError{Op: op, HTTPStatus: status, RetryAfter: wait, Err: fail}
		}
		return decode(op, status, body, out)
	}
}

// do sends one request and reads the capped body.
func (c *Client) do(ctx context.Context, method, path string, params url.Values, signed bool) (int, http.Header, []byte, error) {
	canon := CanonParams(params)
	u := url.URL{Scheme: "https", Host: c.host, Path: path}
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = canon
	} else {
		// A strings.Reader gives the request a Content-Length, so the
		// body is never sent chunked, and a retry builds a fresh one.
		body = strings.NewReader(canon)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, nil, err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if signed {
		date := FormatDate(c.duoNow())
		req.Header.Set("Date", date)
		req.Header.Set("Authorization", Sign(c.ikey, c.skey, date, method, c.host, path, params))
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Drop the URL, which repeats the query.
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(b)) > c.maxBody {
		return resp.StatusCode, nil, nil, fmt.Errorf("response is larger than %d bytes", c.maxBody)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// retryAfter reads a 429's Retry-After header: delay-seconds or an
// HTTP-date (compared with duoNow, Duo's clock as best known).
func retryAfter(h http.Header, duoNow time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return DefaultRetryAfter
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return DefaultRetryAfter
		}
		if n > int64(MaxRetryAfter/time.Second)+1 {
			return MaxRetryAfter + time.Second // beyond any wait honoured
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(duoNow)
		if d < 0 {
			return 0
		}
		return d
	}
	return DefaultRetryAfter
}

// fits reports whether waiting d still leaves the context time to retry.
func fits(ctx context.Context, d time.Duration) bool {
	if d > MaxRetryAfter || ctx.Err() != nil {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// envelope is Duo's response wrapper.
type envelope struct {
	Stat     string          `json:"stat"`
	Response json.RawMessage `json:"response"`
	Code     json.RawMessage `json:"code"`
	Message  *string         `json:"message"`
	Detail   *string         `json:"message_detail"`
}

// parseEnvelope decodes exactly one JSON object with a valid stat.
func parseEnvelope(body []byte) (*envelope, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty response body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("response is not a JSON envelope: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("response has data after the JSON envelope")
	}
	switch env.Stat {
	case "OK", "FAIL":
	default:
		return nil, fmt.Errorf("response has stat %q, not OK or FAIL", clean(env.Stat))
	}
	return &env, nil
}

// jsonProblem describes a JSON error without quoting the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "not a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	default:
		return "invalid JSON"
	}
}

// failCode reads a FAIL envelope's code: an integer, or (as golib
// tolerates) an empty string or nothing, which give 0.
func failCode(raw json.RawMessage) (int, error) {
	s := string(bytes.TrimSpace(raw))
	switch s {
	case "", "null", `""`:
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			if n, err = strconv.Atoi(str); err == nil {
				return n, nil
			}
		}
		return 0, errors.New("FAIL response has a malformed code")
	}
	return n, nil
}

// failFromBody builds an *Error from a body that may or may not be a FAIL
// envelope (used for 429s, whose body is informative only).
func failFromBody(status int, body []byte) *Error {
	e := &Error{HTTPStatus: status}
	if env, err := parseEnvelope(body); err == nil && env.Stat == "FAIL" {
		e.Code, _ = failCode(env.Code)
		e.Message, e.Detail = deref(env.Message), deref(env.Detail)
	}
	if e.Message == "" {
		e.Message = "Too many requests"
	}
	return e
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return clean(*p)
}

// decode turns a response into out, an *Error, or an *UnavailableError.
func decode(op string, status int, body []byte, out validator) error {
	unavailable := func(err error) error {
		return &UnavailableError{Op: op, HTTPStatus: status, Err: err}
	}
	env, err := parseEnvelope(body)
	if err != nil {
		if status != http.StatusOK {
			return unavailable(fmt.Errorf("unexpected HTTP status %d: %v", status, err))
		}
		return unavailable(err)
	}
	if env.Stat == "FAIL" {
		code, err := failCode(env.Code)
		if err != nil {
			return unavailable(err)
		}
		e := &Error{HTTPStatus: status, Code: code, Message: deref(env.Message), Detail: deref(env.Detail)}
		if status >= 500 || code == 0 || code >= 50000 {
			// A server error, or a FAIL that says nothing (duo_unix
			// treats it as a server error too).
			return unavailable(e)
		}
		return e
	}
	if status != http.StatusOK {
		return unavailable(fmt.Errorf("stat OK with HTTP status %d", status))
	}
	if len(env.Response) == 0 || string(bytes.TrimSpace(env.Response)) == "null" {
		return unavailable(errors.New("OK response has no response field"))
	}
	if err := json.Unmarshal(env.Response, out); err != nil {
		return unavailable(fmt.Errorf("malformed response: %s", jsonProblem(err)))
	}
	if err := out.validate(); err != nil {
		return unavailable(fmt.Errorf("malformed response: %w", err))
	}
	return nil
}
