package duo

// Configure and the checks of each setting.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Configure validates settings and replaces the current ones without
// contacting Duo (Activate does that). On error the previous settings stay
// in force. No error message contains the secret key.
func (p *Provider) Configure(_ context.Context, settings sdk.Settings) error {
	err := p.configure(settings)
	if err != nil {
		// A safety net: the checks never quote the secret key, but a secret
		// key pasted into another field could be quoted as that field's
		// value.
		if skey := settings[settingSecretKey]; len(skey) >= 8 && strings.Contains(err.Error(), skey) {
			var se *sdk.Error
			if errors.As(err, &se) {
				return &sdk.Error{Kind: se.Kind, Field: se.Field,
					Message: strings.ReplaceAll(se.Message, skey, "(the secret key)")}
			}
			return sdk.Errorf(sdk.KindInvalidSettings, "invalid settings")
		}
	}
	return err
}

func (p *Provider) configure(settings sdk.Settings) error {
	v, err := schema.Parse(settings)
	if err != nil {
		return err
	}
	c := &config{
		ikey:            v.String(settingIntegrationKey),
		host:            v.String(settingAPIHostname),
		failmode:        v.String(settingFailmode),
		timeout:         v.Duration(settingTimeout),
		pushInfo:        v.String(settingPushInfo),
		displayUsername: v.Bool(settingDisplayUsername),
	}
	skey := v.String(settingSecretKey)
	if err := checkIntegrationKey(c.ikey); err != nil {
		return err
	}
	if err := checkSecretKey(skey); err != nil {
		return err
	}
	if err := checkHost(c.host, v.Bool(settingAllowCustomHost)); err != nil {
		return err
	}
	if c.timeout < minTimeout || c.timeout > maxTimeout {
		return sdk.FieldError(sdk.KindInvalidSettings, settingTimeout, "%s is outside [%s, %s]", c.timeout, minTimeout, maxTimeout)
	}
	if err := checkPushInfo(c.pushInfo); err != nil {
		return err
	}
	roots, err := p.rootCAs(v.String(settingCAFile))
	if err != nil {
		return err
	}
	client, err := authapi.New(authapi.Config{
		IntegrationKey: c.ikey,
		SecretKey:      skey,
		Host:           c.host,
		RootCAs:        roots,
		Now:            p.now,
		UserAgent:      "twofactor-provider-duo/" + Version,
		Sleep:          p.sleep,
		Jitter:         p.jitter,
		Transport:      p.transport,
		OnResign: func(op string, before, after time.Duration) {
			p.log.Warn("Duo answered 401: measured Duo's clock and signed the request again", "op", op,
				"clock_offset_before", formatOffset(before), "clock_offset", formatOffset(after))
		},
	})
	if err != nil {
		// The settings were checked above; this is a bug. authapi's
		// messages never contain the secret key.
		return sdk.Errorf(sdk.KindInternal, "%v", err)
	}
	c.client = client
	if old := p.cfg.Load(); old != nil && old.host == c.host {
		// Same Duo: keep the measured clock offset.
		client.SetOffset(old.client.Offset())
	}
	if old := p.cfg.Swap(c); old != nil {
		old.client.CloseIdleConnections()
	}
	p.log.Info("configured", "integration_key", c.ikey, "api_hostname", c.host, "failmode", c.failmode,
		"timeout", c.timeout, "display_username", c.displayUsername, "push_info", c.pushInfo != "",
		"ca_file", v.String(settingCAFile))
	return nil
}

func checkIntegrationKey(k string) error {
	if integrationKeyRE.MatchString(k) {
		return nil
	}
	// The value is not quoted: a secret key pasted here must not end up in
	// an error message.
	msg := fmt.Sprintf("is not an integration key: it has 20 characters, \"DI\" and then 18 upper-case letters "+
		"and digits (got %d characters); copy it from %s", len(k), adminPanelPath)
	switch {
	case strings.TrimSpace(k) != k:
		msg = "has leading or trailing spaces"
	case len(k) == 40:
		msg = "looks like a secret key (40 characters); the integration key is the 20-character value starting with DI"
	}
	return sdk.FieldError(sdk.KindInvalidSettings, settingIntegrationKey, "%s", msg)
}

func checkSecretKey(k string) error {
	var msg string
	switch {
	case strings.TrimSpace(k) != k:
		msg = "has leading or trailing spaces"
	case integrationKeyRE.MatchString(k):
		msg = "looks like an integration key; the secret key is the 40-character value next to it"
	case len(k) != 40:
		msg = fmt.Sprintf("must be 40 characters (got %d); copy it from %s", len(k), adminPanelPath)
	case strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		msg = "must be printable ASCII characters"
	default:
		return nil
	}
	return sdk.FieldError(sdk.KindInvalidSettings, settingSecretKey, "%s", msg)
}

func checkHost(h string, custom bool) error {
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingAPIHostname, format, args...)
	}
	// Quote the value only when it looks like a host name, never a
	// (dot-less) key pasted into the wrong field.
	shown := "value"
	if strings.ContainsAny(h, ".:/") && len(h) <= 253 {
		shown = strconv.Quote(h)
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@") {
		return bad("%s must be a host name only, such as api-1a2b3c4d.duosecurity.com, without https:// or a path", shown)
	}
	if !custom {
		if !duoHostRE.MatchString(h) {
			return bad("%s is not a Duo API hostname (api-XXXXXXXX.duosecurity.com in lower case, from %s); "+
				"set allow_custom_host: true only for an emulator", shown, adminPanelPath)
		}
		return nil
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return bad("%s is not a host[:port]", shown)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(h, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("%s has a bad port", shown)
		}
	}
	if name := u.Hostname(); net.ParseIP(name) == nil {
		for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
			if label == "" || len(label) > 63 || strings.IndexFunc(label, func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-')
			}) >= 0 {
				return bad("%s is not a valid host name", shown)
			}
		}
	}
	return nil
}

func checkPushInfo(s string) error {
	if s == "" {
		return nil
	}
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingPushInfo, format, args...)
	}
	if len(s) >= maxPushInfoLen {
		return bad("is %d bytes; Duo accepts under %d", len(s), maxPushInfoLen)
	}
	vals, err := url.ParseQuery(s)
	if err != nil {
		return bad("is not URL-encoded key=value pairs joined by &: %v", err)
	}
	for _, pair := range strings.Split(s, "&") {
		k, _, found := strings.Cut(pair, "=")
		if !found || k == "" {
			return bad("every part must be key=value (URL-encoded), such as app=Billing&env=production")
		}
	}
	if len(vals) == 0 {
		return bad("has no key=value pair")
	}
	return nil
}

// rootCAs returns the pool to verify Duo's certificate with: the
// WithRootCAs pool or nil (the system roots), plus ca_file's certificates.
func (p *Provider) rootCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return p.roots, nil
	}
	bad := func(format string, args ...any) error {
		return sdk.FieldError(sdk.KindInvalidSettings, settingCAFile, format, args...)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, bad("cannot read %q: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFileLen+1))
	if err != nil {
		return nil, bad("cannot read %q: %v", path, err)
	}
	if len(pem) > maxCAFileLen {
		return nil, bad("%q is larger than %d bytes", path, maxCAFileLen)
	}
	var pool *x509.CertPool
	switch {
	case p.roots != nil:
		pool = p.roots.Clone()
	default:
		if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, bad("%q contains no PEM certificate", path)
	}
	return pool, nil
}
