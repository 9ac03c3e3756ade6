package duo

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

const (
	goodIKey = "DIWJ8X6AEYOR5OMC6TQ1"
	goodSKey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
	goodHost = "api-1a2b3c4d.duosecurity.com"
)

func base(extra sdk.Settings) sdk.Settings {
	s := sdk.Settings{"integration_key": goodIKey, "secret_key": goodSKey, "api_hostname": goodHost}
	for k, v := range extra {
		if v == "\x00" {
			delete(s, k)
		} else {
			s[k] = v
		}
	}
	return s
}

func TestInfo(t *testing.T) {
	info, err := New().Info(ctx) // works before Configure
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "duo" || info.Version != Version {
		t.Errorf("Info = %+v", info)
	}
	if want := (sdk.Capabilities{Code: true, Push: true, Factors: []sdk.Factor{FactorAuto, FactorPush, FactorPasscode, FactorSMS},
		Challenges: []sdk.Factor{FactorSMS}}); !reflect.DeepEqual(info.Capabilities, want) {
		t.Errorf("Capabilities = %+v, want %+v", info.Capabilities, want)
	}
	var names []string
	for _, f := range info.Schema {
		names = append(names, f.Name)
		if f.Help == "" {
			t.Errorf("field %s has no help", f.Name)
		}
		if f.Secret != (f.Name == "secret_key") {
			t.Errorf("field %s: Secret = %v", f.Name, f.Secret)
		}
	}
	want := "integration_key,secret_key,api_hostname,allow_custom_host,failmode,timeout,push_info,display_username,ca_file"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("schema = %s, want %s", got, want)
	}
	info.Schema[4].Enum[0] = "changed"
	if again, _ := New().Info(ctx); again.Schema[4].Enum[0] != "secure" {
		t.Error("Info returned the schema itself, not a copy")
	}
}

func TestConfigureRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name  string
		extra sdk.Settings
		field string
	}{
		{"missing integration_key", sdk.Settings{"integration_key": "\x00"}, "integration_key"},
		{"short integration_key", sdk.Settings{"integration_key": "DIWJ8X6AEYOR5OMC6TQ"}, "integration_key"},
		{"lower-case integration_key", sdk.Settings{"integration_key": "diwj8x6aeyor5omc6tq1"}, "integration_key"},
		{"integration_key not DI", sdk.Settings{"integration_key": "XXWJ8X6AEYOR5OMC6TQ1"}, "integration_key"},
		{"integration_key with space", sdk.Settings{"integration_key": goodIKey + " "}, "integration_key"},
		{"secret key as integration_key", sdk.Settings{"integration_key": goodSKey}, "integration_key"},
		{"missing secret_key", sdk.Settings{"secret_key": "\x00"}, "secret_key"},
		{"short secret_key", sdk.Settings{"secret_key": goodSKey[:39]}, "secret_key"},
		{"long secret_key", sdk.Settings{"secret_key": goodSKey + "x"}, "secret_key"},
		{"secret_key with newline", sdk.Settings{"secret_key": goodSKey[:39] + "\n"}, "secret_key"},
		{"secret_key with inner space", sdk.Settings{"secret_key": goodSKey[:20] + " " + goodSKey[21:]}, "secret_key"},
		{"integration key as secret_key", sdk.Settings{"secret_key": goodIKey}, "secret_key"},
		{"missing api_hostname", sdk.Settings{"api_hostname": "\x00"}, "api_hostname"},
		{"api_hostname with scheme", sdk.Settings{"api_hostname": "https://" + goodHost}, "api_hostname"},
		{"api_hostname with path", sdk.Settings{"api_hostname": goodHost + "/"}, "api_hostname"},
		{"api_hostname not duo", sdk.Settings{"api_hostname": "api-1a2b3c4d.example.com"}, "api_hostname"},
		{"api_hostname upper case", sdk.Settings{"api_hostname": "API-1A2B3C4D.duosecurity.com"}, "api_hostname"},
		{"api_hostname with port", sdk.Settings{"api_hostname": goodHost + ":443"}, "api_hostname"},
		{"custom host not allowed", sdk.Settings{"api_hostname": "127.0.0.1:8443"}, "api_hostname"},
		{"custom host bad port", sdk.Settings{"api_hostname": "127.0.0.1:99999", "allow_custom_host": "true"}, "api_hostname"},
		{"custom host empty port", sdk.Settings{"api_hostname": "127.0.0.1:", "allow_custom_host": "true"}, "api_hostname"},
		{"custom host bad name", sdk.Settings{"api_hostname": "bad_host!", "allow_custom_host": "true"}, "api_hostname"},
		{"custom host with scheme", sdk.Settings{"api_hostname": "https://127.0.0.1:8443", "allow_custom_host": "true"}, "api_hostname"},
		{"allow_custom_host not bool", sdk.Settings{"allow_custom_host": "yes"}, "allow_custom_host"},
		{"failmode open", sdk.Settings{"failmode": "open"}, "failmode"},
		{"failmode upper case", sdk.Settings{"failmode": "SAFE"}, "failmode"},
		{"timeout text", sdk.Settings{"timeout": "ten"}, "timeout"},
		{"timeout negative", sdk.Settings{"timeout": "-1s"}, "timeout"},
		{"timeout too short", sdk.Settings{"timeout": "500ms"}, "timeout"},
		{"timeout too long", sdk.Settings{"timeout": "3m"}, "timeout"},
		{"push_info not pairs", sdk.Settings{"push_info": "just text"}, "push_info"},
		{"push_info bad escape", sdk.Settings{"push_info": "a=%zz"}, "push_info"},
		{"push_info empty key", sdk.Settings{"push_info": "=x"}, "push_info"},
		{"push_info too long", sdk.Settings{"push_info": "a=" + strings.Repeat("x", 20000)}, "push_info"},
		{"display_username not bool", sdk.Settings{"display_username": "alice"}, "display_username"},
		{"ca_file missing", sdk.Settings{"ca_file": filepath.Join(dir, "nope.pem")}, "ca_file"},
		{"ca_file not PEM", sdk.Settings{"ca_file": notPEM}, "ca_file"},
		{"unknown setting", sdk.Settings{"skey": goodSKey}, "skey"},
		{"secret key as ca_file", sdk.Settings{"ca_file": goodSKey}, "ca_file"},
		{"secret key as push_info", sdk.Settings{"push_info": goodSKey + "=%zz"}, "push_info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			if err := p.Configure(ctx, base(sdk.Settings{"failmode": "safe"})); err != nil {
				t.Fatal(err)
			}
			err := p.Configure(ctx, base(tc.extra))
			e := wantKind(t, err, sdk.KindInvalidSettings, tc.field)
			for _, secret := range []string{goodSKey, goodSKey[:39], goodSKey[:20]} {
				if strings.Contains(e.Error(), secret) {
					t.Errorf("error contains the secret key: %v", e)
				}
			}
			if p.cfg.Load().failmode != "safe" {
				t.Error("a refused Configure replaced the settings")
			}
		})
	}
}

func TestConfigureAccepts(t *testing.T) {
	for _, extra := range []sdk.Settings{
		nil,
		{"failmode": "safe", "timeout": "1s", "push_info": "app=Billing&env=prod%20eu", "display_username": "true"},
		{"api_hostname": "localhost:8443", "allow_custom_host": "true"},
		{"api_hostname": "duo-emulator.internal", "allow_custom_host": "true"},
		{"api_hostname": "[::1]:8443", "allow_custom_host": "true"},
	} {
		p := New()
		if err := p.Configure(ctx, base(extra)); err != nil {
			t.Errorf("Configure(%v): %v", extra, err)
		}
	}
	p := New()
	p.Configure(ctx, base(nil))
	c := p.cfg.Load()
	if c.failmode != "secure" || c.timeout != 10*time.Second || c.displayUsername || c.pushInfo != "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestNotConfigured(t *testing.T) {
	p := New()
	_, err := p.Activate(ctx)
	wantKind(t, err, sdk.KindNotConfigured, "")
	_, err = p.Verify(ctx, sdk.VerifyRequest{})
	wantKind(t, err, sdk.KindNotConfigured, "")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{})
	wantKind(t, err, sdk.KindNotConfigured, "")
}

func TestActivateHealthy(t *testing.T) {
	e := newEnv(t)
	p := e.provider(nil)
	a, err := p.Activate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Health != sdk.Healthy || len(a.Diagnostics) != 1 || a.Diagnostics[0].Code != "clock_offset" {
		t.Fatalf("Activation = %+v", a)
	}
	if v := a.Diagnostics[0].Value; v != "0s" && v != "1s" && v != "-1s" {
		t.Errorf("clock_offset = %s, want about 0s", v)
	}
	if r := e.lastRequest("/auth/v2/check"); !r.Authorized {
		t.Errorf("check was not authorized: %+v", r)
	}
	// Failmode safe is pointed out.
	a, err = e.activated(sdk.Settings{"failmode": "safe"}).Activate(ctx)
	if err != nil || len(a.Diagnostics) != 2 || a.Diagnostics[1].Code != "failmode" {
		t.Errorf("Activation with failmode safe = %+v, %v", a, err)
	}
}

func TestActivateCredentialErrors(t *testing.T) {
	e := newEnv(t)
	webIKey, webSKey := e.emu.AddWebSDKIntegration()

	// Another Duo deployment, which does not know this integration.
	other, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)

	// A host name under which Duo does not know itself: a front end that
	// forwards to the emulator as its real name, so the signed host
	// differs from the host Duo checks the signature with.
	emuURL, _ := url.Parse("https://" + e.emu.Host())
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(emuURL) },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.emu.CertPool()}},
	})
	front.StartTLS()
	t.Cleanup(front.Close)
	frontHost := front.Listener.Addr().String()
	bothCAs := writeCA(t, e.emu.Certificate().Raw, front.Certificate().Raw, other.Certificate().Raw)

	wrongSKey := strings.Repeat("x", 40)
	// In bare mode both emulators answer every refusal with an empty body:
	// the provider cannot tell which value is wrong and says so.
	const bareField, bareMessage = "", "does not say which value is wrong"
	for _, tc := range []struct {
		name    string
		extra   sdk.Settings
		kind    sdk.Kind
		field   string
		message string
		// bareField and bareMessage are the same for a bare answer.
		bareField, bareMessage string
	}{
		{"wrong integration key", sdk.Settings{"integration_key": "DI" + strings.Repeat("Z", 18)},
			sdk.KindInvalidCredentials, "integration_key", "Duo does not know integration key", bareField, bareMessage},
		{"wrong secret key", sdk.Settings{"secret_key": wrongSKey},
			sdk.KindInvalidCredentials, "secret_key", "secret key or API hostname is wrong", bareField, bareMessage},
		{"wrong hostname (signature host mismatch)", sdk.Settings{"api_hostname": frontHost, "ca_file": bothCAs},
			sdk.KindInvalidCredentials, "secret_key", "secret key or API hostname is wrong", bareField, bareMessage},
		{"hostname of another Duo", sdk.Settings{"api_hostname": other.Host(), "ca_file": bothCAs},
			sdk.KindInvalidCredentials, "integration_key", "api_hostname (" + other.Host() + ") is that application's", bareField, bareMessage},
		{"Web SDK keys", sdk.Settings{"integration_key": webIKey, "secret_key": webSKey},
			sdk.KindInvalidCredentials, "integration_key", "another kind of Duo application", "integration_key", "another kind of Duo application"},
	} {
		for _, bare := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bare=%v", tc.name, bare), func(t *testing.T) {
				e.emu.SetBareErrors(bare)
				other.SetBareErrors(bare)
				_, err := e.provider(tc.extra).Activate(ctx)
				field, message := tc.field, tc.message
				if bare {
					field, message = tc.bareField, tc.bareMessage
				}
				se := wantKind(t, err, tc.kind, field)
				if !strings.Contains(se.Message, message) {
					t.Errorf("message = %q, want it to contain %q", se.Message, message)
				}
				// The fix names the setting (every candidate when the answer
				// cannot tell), and never sends the admin to DNS.
				names := []string{field}
				if field == "" {
					names = []string{"integration_key", "secret_key", "api_hostname", "Auth API"}
				}
				for _, name := range names {
					if !strings.Contains(se.Fix, name) {
						t.Errorf("fix = %q, want it to name %s", se.Fix, name)
					}
				}
				if field == "" && !strings.Contains(se.Fix, "1. integration_key") || strings.Contains(se.Fix, "DNS") {
					t.Errorf("fix = %q", se.Fix)
				}
				if field == "integration_key" && !strings.Contains(se.Message, "Auth API") {
					t.Errorf("message = %q, want it to point at an Auth API application", se.Message)
				}
				for _, secret := range []string{e.skey, webSKey, wrongSKey} {
					if strings.Contains(err.Error(), secret) || strings.Contains(se.Fix, secret) {
						t.Errorf("error leaks a secret key: %v", err)
					}
				}
			})
		}
	}
	if r := e.emu.Requests(); len(r) == 0 {
		t.Fatal("the emulator saw no request")
	}
}

// TestActivateUnavailable: a Duo that cannot be reached does not stop the
// provider: it reports itself unhealthy, with a fix that names the host,
// and serves (the failmode decides); answers that are definite (a
// malformed 200) are not an outage.
func TestActivateUnavailable(t *testing.T) {
	e := newEnv(t)
	p := e.provider(sdk.Settings{"timeout": "1s"})
	for _, f := range []duotest.Failure{
		{Path: "/auth/v2/ping", Status: 500},
		{Path: "/auth/v2/check", Status: 503},
		{Path: "/auth/v2/ping", Delay: 5 * time.Second},
	} {
		e.emu.Fail(1, f)
		start := time.Now()
		a, err := p.Activate(ctx)
		wantUnreachable(t, a, err, e.emu.Host())
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Activate with %+v took %v", f, el)
		}
	}
	e.emu.Fail(1, duotest.Failure{Path: "/auth/v2/check", Malformed: true})
	_, err := p.Activate(ctx)
	se := wantKind(t, err, sdk.KindInvalidCredentials, "api_hostname")
	if !strings.Contains(se.Fix, "api_hostname") {
		t.Errorf("fix = %q, want it to name api_hostname", se.Fix)
	}
	e.emu.Close()
	a, err := p.Activate(ctx)
	wantUnreachable(t, a, err, e.emu.Host())
}

// wantUnreachable checks the activation of a provider whose Duo cannot be
// reached.
func wantUnreachable(t *testing.T, a sdk.Activation, err error, host string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Activate error %v, want an unhealthy activation", err)
	}
	if a.Health != sdk.Unhealthy || len(a.Diagnostics) == 0 {
		t.Fatalf("Activate = %+v, want unhealthy with a diagnostic", a)
	}
	d := a.Diagnostics[0]
	if d.Code != "duo_unreachable" || d.Severity != sdk.SeverityError || !strings.Contains(d.Fix, host) ||
		!strings.Contains(d.Message, "failmode") {
		t.Errorf("diagnostic = %+v", d)
	}
}

func TestActivateUntrustedCertificate(t *testing.T) {
	e := newEnv(t)
	// Without ca_file the emulator's certificate is not trusted: Duo
	// cannot be reached, and the fix mentions ca_file.
	a, err := e.provider(sdk.Settings{"ca_file": ""}).Activate(ctx)
	wantUnreachable(t, a, err, e.emu.Host())
	if !strings.Contains(a.Diagnostics[0].Fix, "ca_file") {
		t.Errorf("fix = %q", a.Diagnostics[0].Fix)
	}
	// WithRootCAs is the in-process alternative to ca_file.
	if a, err := e.provider(sdk.Settings{"ca_file": ""}, WithRootCAs(e.emu.CertPool())).Activate(ctx); err != nil || a.Health != sdk.Healthy {
		t.Errorf("Activate WithRootCAs: %+v, %v", a, err)
	}
}

// TestClockOffset: a host clock 90 s off Duo's is reported, degrades the
// provider, and does not break logins.
func TestClockOffset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(e *env) []Option
		offset string
	}{
		{"emulator 90s ahead", func(e *env) []Option { e.emu.SetClockOffset(90 * time.Second); return nil }, "90s"},
		{"host clock 90s ahead", func(e *env) []Option {
			return []Option{WithClock(func() time.Time { return time.Now().Add(90 * time.Second) })}
		}, "-90s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(nil, tc.setup(e)...)
			a, err := p.Activate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if a.Health != sdk.Degraded || len(a.Diagnostics) == 0 {
				t.Fatalf("Activation = %+v, want degraded", a)
			}
			d := a.Diagnostics[0]
			if d.Code != "clock_offset" || !near(d.Value, tc.offset) || !strings.Contains(d.Message, "NTP") {
				t.Errorf("diagnostic = %+v, want clock_offset about %s mentioning NTP", d, tc.offset)
			}
			state := e.enrolled(p, "alice")
			e.emu.AddPasscode("alice", "123456")
			r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "alice"}, State: state, Code: "123456"})
			wantOutcome(t, r, err, sdk.Allow, "")
		})
	}
}

// near compares "90s"-style values within a second.
func near(got, want string) bool {
	g, err1 := time.ParseDuration(got)
	w, err2 := time.ParseDuration(want)
	return err1 == nil && err2 == nil && (g-w).Abs() <= time.Second
}

// TestClockMeasuredLazily: a provider that was never activated measures
// the offset before its first signed call.
func TestClockMeasuredLazily(t *testing.T) {
	e := newEnv(t)
	e.emu.SetClockOffset(-5 * time.Minute)
	p := e.provider(nil)
	state := e.enrolled(p, "bob")
	e.emu.AddPasscode("bob", "424242")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "bob"}, State: state, Code: "424242"})
	wantOutcome(t, r, err, sdk.Allow, "")
}

// TestClockJump: Duo's clock jumps after activation; the 40105 that
// follows triggers one new measurement and a retry.
func TestClockJump(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	state := e.enrolled(p, "carol")
	e.emu.AddPasscode("carol", "111111")
	e.emu.SetClockOffset(3 * time.Minute)
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "carol"}, State: state, Code: "111111"})
	wantOutcome(t, r, err, sdk.Allow, "")
	var bad int
	for _, req := range e.emu.Requests() {
		if req.Code == 40105 {
			bad++
		}
	}
	if bad != 1 {
		t.Errorf("%d requests got 40105, want 1", bad)
	}
}

// TestClockSkewError: when Duo still rejects the time after a
// measurement, Activate says by how much the clock is off.
func TestClockSkewError(t *testing.T) {
	e := newEnv(t)
	// The host clock reads right while the offset is measured (two
	// readings), then 5 minutes back when a request is signed (the third),
	// every time: measuring again on the 40105 does not help.
	calls := 0
	jumpy := func() time.Time {
		calls++
		if calls%3 != 0 {
			return time.Now()
		}
		return time.Now().Add(-5 * time.Minute)
	}
	_, err := e.provider(nil, WithClock(jumpy)).Activate(ctx)
	se := wantKind(t, err, sdk.KindClockSkew, "")
	if !strings.Contains(se.Fix, "NTP") || !strings.Contains(se.Message, "even after measuring") {
		t.Errorf("error = %q, fix %q", se.Message, se.Fix)
	}
}

func TestFormatOffset(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -90 * time.Second: "-90s", 90*time.Second + 400*time.Millisecond: "90s",
		89*time.Second + 600*time.Millisecond: "90s", -2 * time.Hour: "-7200s",
	} {
		if got := formatOffset(d); got != want {
			t.Errorf("formatOffset(%v) = %s, want %s", d, got, want)
		}
	}
}
