package authapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// DefaultRetryAfter is the first wait before retrying a 429 that carries
// no usable Retry-After header (it doubles on each further 429): the first
// back-off step of Duo's own clients.
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
	// Sleep waits d or until ctx ends (between tries after a 429); nil
	// means a timer. Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, n) added to a backoff; nil
	// means math/rand. Tests inject one.
	Jitter func(n time.Duration) time.Duration
	// OnResign, when set, is told when a 401 made the client measure the
	// clock offset again and re-sign the request (op, the offset before
	// and after), so that the caller can report it.
	OnResign func(op string, before, after time.Duration)
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

	sleep    func(ctx context.Context, d time.Duration) error
	jitter   func(n time.Duration) time.Duration
	onResign func(op string, before, after time.Duration)
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
		ikey:     cfg.IntegrationKey,
		skey:     []byte(cfg.SecretKey),
		host:     cfg.Host,
		ua:       cfg.UserAgent,
		maxBody:  cfg.MaxResponseBytes,
		now:      cfg.Now,
		sleep:    cfg.Sleep,
		jitter:   cfg.Jitter,
		onResign: cfg.OnResign,
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.jitter == nil {
		c.jitter = func(n time.Duration) time.Duration { return rand.N(n) }
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
