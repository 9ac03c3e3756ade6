package totp

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/sdk"
)

var ctx = context.Background()

// configured returns a provider configured with issuer "Acme" plus extra.
func configured(t testing.TB, extra sdk.Settings) *Provider {
	t.Helper()
	s := sdk.Settings{"issuer": "Acme"}
	for k, v := range extra {
		s[k] = v
	}
	p := New()
	if err := p.Configure(ctx, s); err != nil {
		t.Fatalf("Configure(%v): %v", s, err)
	}
	return p
}

// wantKind fails unless err is an *sdk.Error of the given kind and field.
func wantKind(t *testing.T, err error, kind sdk.Kind, field string) {
	t.Helper()
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *sdk.Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || e.Field != field {
		t.Fatalf("error = %v, want kind %s field %q", err, kind, field)
	}
}

func TestInfo(t *testing.T) {
	info, err := New().Info(ctx) // must work before Configure
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "totp" || info.Version != "1.0.0" {
		t.Errorf("Info = %+v", info)
	}
	if want := (sdk.Capabilities{Code: true, EnrollNeedsConfirmation: true}); !reflect.DeepEqual(info.Capabilities, want) {
		t.Errorf("Capabilities = %+v, want %+v", info.Capabilities, want)
	}
	var names []string
	for _, f := range info.Schema {
		names = append(names, f.Name)
		if f.Help == "" {
			t.Errorf("field %s has no help text", f.Name)
		}
	}
	if got, want := strings.Join(names, ","), "issuer,algorithm,digits,period,skew,secret_bytes"; got != want {
		t.Errorf("schema fields = %s, want %s", got, want)
	}
}

func TestConfigureRejects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings sdk.Settings
		field    string
	}{
		{"missing issuer", sdk.Settings{}, "issuer"},
		{"empty issuer", sdk.Settings{"issuer": ""}, "issuer"},
		{"issuer with colon", sdk.Settings{"issuer": "Evil:Corp"}, "issuer"},
		{"issuer with newline", sdk.Settings{"issuer": "Acme\n"}, "issuer"},
		{"issuer too long", sdk.Settings{"issuer": strings.Repeat("a", maxIssuerLen+1)}, "issuer"},
		{"digits 7", sdk.Settings{"issuer": "Acme", "digits": "7"}, "digits"},
		{"digits 06", sdk.Settings{"issuer": "Acme", "digits": "06"}, "digits"},
		{"digits text", sdk.Settings{"issuer": "Acme", "digits": "six"}, "digits"},
		{"algorithm MD5", sdk.Settings{"issuer": "Acme", "algorithm": "MD5"}, "algorithm"},
		{"algorithm lower case", sdk.Settings{"issuer": "Acme", "algorithm": "sha1"}, "algorithm"},
		{"skew 3", sdk.Settings{"issuer": "Acme", "skew": "3"}, "skew"},
		{"skew -1", sdk.Settings{"issuer": "Acme", "skew": "-1"}, "skew"},
		{"secret_bytes 8", sdk.Settings{"issuer": "Acme", "secret_bytes": "8"}, "secret_bytes"},
		{"secret_bytes 65", sdk.Settings{"issuer": "Acme", "secret_bytes": "65"}, "secret_bytes"},
		{"period 0", sdk.Settings{"issuer": "Acme", "period": "0"}, "period"},
		{"period 301", sdk.Settings{"issuer": "Acme", "period": "301"}, "period"},
		{"period 30s", sdk.Settings{"issuer": "Acme", "period": "30s"}, "period"},
		{"unknown key", sdk.Settings{"issuer": "Acme", "window": "1"}, "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := configured(t, sdk.Settings{"issuer": "Before"})
			wantKind(t, p.Configure(ctx, tc.settings), sdk.KindInvalidSettings, tc.field)
			// A refused configuration leaves the previous one in force.
			if got := p.cfg.Load().issuer; got != "Before" {
				t.Errorf("issuer after refused Configure = %q, want Before", got)
			}
		})
	}
}

func TestConfigureDefaultsAndReplace(t *testing.T) {
	p := configured(t, nil)
	want := config{issuer: "Acme", algName: "SHA1", algorithm: otp.AlgorithmSHA1, digits: 6, period: 30, skew: 1, secretBytes: 20}
	if got := *p.cfg.Load(); got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	err := p.Configure(ctx, sdk.Settings{"issuer": "Other Co", "algorithm": "SHA512", "digits": "8", "period": "60", "skew": "0", "secret_bytes": "64"})
	if err != nil {
		t.Fatal(err)
	}
	want = config{issuer: "Other Co", algName: "SHA512", algorithm: otp.AlgorithmSHA512, digits: 8, period: 60, skew: 0, secretBytes: 64}
	if got := *p.cfg.Load(); got != want {
		t.Errorf("after reconfigure = %+v, want %+v", got, want)
	}
}

func TestNotConfigured(t *testing.T) {
	p := New()
	_, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "u"}, Step: sdk.EnrollBegin})
	wantKind(t, err, sdk.KindNotConfigured, "")
	_, err = p.Verify(ctx, sdk.VerifyRequest{State: []byte("{}"), Code: "123456"})
	wantKind(t, err, sdk.KindNotConfigured, "")
	_, err = p.Activate(ctx)
	wantKind(t, err, sdk.KindNotConfigured, "")
}

func TestActivate(t *testing.T) {
	for _, tc := range []struct {
		settings sdk.Settings
		warn     bool
		fix      string // what the fix must say when warned
	}{
		{nil, false, ""},
		{sdk.Settings{"skew": "2", "secret_bytes": "32"}, false, ""},
		{sdk.Settings{"algorithm": "SHA256"}, true, "algorithm: SHA1"},
		{sdk.Settings{"digits": "8"}, true, "digits: 6"},
		{sdk.Settings{"period": "60"}, true, "period: 30"},
	} {
		a, err := configured(t, tc.settings).Activate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a.Health != sdk.Healthy {
			t.Errorf("%v: health = %s", tc.settings, a.Health)
		}
		if len(a.Diagnostics) != 1 || a.Diagnostics[0].Code != "authenticator_compat" {
			t.Fatalf("%v: diagnostics = %+v, want one authenticator_compat", tc.settings, a.Diagnostics)
		}
		d := a.Diagnostics[0]
		warned := d.Severity == sdk.SeverityWarning
		if warned != tc.warn || (!tc.warn && (d.Severity != sdk.SeverityInfo || d.Fix != "")) || !strings.Contains(d.Fix, tc.fix) {
			t.Errorf("%v: diagnostic = %+v, want warning %v with a fix saying %q", tc.settings, d, tc.warn, tc.fix)
		}
	}
}

// begin runs EnrollBegin and parses what it shows.
func begin(t *testing.T, p *Provider, user sdk.User, now time.Time) (sdk.EnrollResponse, *otp.Key) {
	t.Helper()
	resp, err := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollBegin, Now: now})
	if err != nil {
		t.Fatalf("EnrollBegin: %v", err)
	}
	if resp.Done || len(resp.State) == 0 {
		t.Fatalf("EnrollBegin: Done=%v, state %d bytes", resp.Done, len(resp.State))
	}
	key, err := otp.NewKeyFromURL(resp.Display.OTPAuthURL)
	if err != nil {
		t.Fatalf("otpauth URL does not parse: %v", err)
	}
	return resp, key
}

func TestEnrollRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		settings sdk.Settings
		alg      otp.Algorithm
		digits   int
		period   uint64
		bytes    int
	}{
		{nil, otp.AlgorithmSHA1, 6, 30, 20},
		{sdk.Settings{"algorithm": "SHA256", "digits": "8", "period": "60", "secret_bytes": "32"}, otp.AlgorithmSHA256, 8, 60, 32},
		{sdk.Settings{"algorithm": "SHA512", "period": "15", "secret_bytes": "64"}, otp.AlgorithmSHA512, 6, 15, 64},
		{sdk.Settings{"secret_bytes": "16"}, otp.AlgorithmSHA1, 6, 30, 16},
		{sdk.Settings{"secret_bytes": "17"}, otp.AlgorithmSHA1, 6, 30, 17}, // not a multiple of 5 (pquerna/otp #102)
	} {
		p := configured(t, tc.settings)
		resp, key := begin(t, p, sdk.User{ID: "42", AccountName: "alice@example.com"}, now)

		if key.Issuer() != "Acme" || key.AccountName() != "alice@example.com" || key.Type() != "totp" {
			t.Errorf("key issuer=%q account=%q type=%q", key.Issuer(), key.AccountName(), key.Type())
		}
		if key.Algorithm() != tc.alg || key.Digits().Length() != tc.digits || key.Period() != tc.period {
			t.Errorf("key algorithm=%v digits=%v period=%v, want %v %v %v", key.Algorithm(), key.Digits(), key.Period(), tc.alg, tc.digits, tc.period)
		}
		for _, param := range []string{"issuer=Acme", "algorithm=", "digits=", "period="} {
			if !strings.Contains(resp.Display.OTPAuthURL, param) {
				t.Errorf("URL lacks %s", param)
			}
		}
		e, err := parseState(resp.State)
		if err != nil {
			t.Fatalf("pending state: %v", err)
		}
		if len(e.secret) != tc.bytes || b32.EncodeToString(e.secret) != key.Secret() || e.lastStep != 0 {
			t.Errorf("pending state secret %d bytes (want %d), matches URL %v, last_step %d",
				len(e.secret), tc.bytes, b32.EncodeToString(e.secret) == key.Secret(), e.lastStep)
		}
		img, err := png.Decode(bytes.NewReader(resp.Display.QRPNG))
		if err != nil {
			t.Fatalf("QR is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != qrSize || b.Dy() != qrSize {
			t.Errorf("QR size = %v", b)
		}
		if !strings.Contains(resp.Display.Instructions, "code") {
			t.Errorf("Instructions = %q", resp.Display.Instructions)
		}

		// The user's app computes the code; pquerna/otp stands in for it.
		code, err := totp.GenerateCodeCustom(key.Secret(), now, totp.ValidateOpts{
			Period: uint(key.Period()), Digits: key.Digits(), Algorithm: key.Algorithm()})
		if err != nil {
			t.Fatal(err)
		}
		finish := sdk.EnrollRequest{User: sdk.User{ID: "42"}, Step: sdk.EnrollFinish, State: resp.State, Code: code, Now: now}
		done, err := p.Enroll(ctx, finish)
		if err != nil || !done.Done || done.Reason != "" {
			t.Fatalf("EnrollFinish = %+v, %v", done, err)
		}
		confirmed, err := parseState(done.State)
		if err != nil || confirmed.lastStep != now.Unix()/int64(tc.period) {
			t.Fatalf("confirmed state last_step = %+v, %v", confirmed, err)
		}
		// The confirmation code is spent: it cannot also log the user in.
		v, err := p.Verify(ctx, sdk.VerifyRequest{State: done.State, Code: code, Now: now.Add(time.Second)})
		if err != nil || v.Outcome != sdk.Deny || v.Reason != sdk.ReasonReplayed || v.State != nil {
			t.Errorf("Verify with confirmation code = %+v, %v; want replayed", v, err)
		}
	}
}

func TestEnrollFinishRejects(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := configured(t, nil)
	resp, key := begin(t, p, sdk.User{ID: "bob"}, now)
	good, _ := totp.GenerateCode(key.Secret(), now)
	wrong := string(good[:5]) + string('0'+(good[5]-'0'+1)%10)
	for _, code := range []string{wrong, "", "12345", "abcdef", "１２３４５６", good + "0"} {
		r, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: resp.State, Code: code, Now: now})
		if err != nil || r.Done || r.Reason != sdk.ReasonInvalidCode || r.State != nil {
			t.Errorf("finish with %q = %+v, %v; want invalid_code and no state", code, r, err)
		}
	}
	// A code from well outside the window is wrong too.
	late := now.Add(5 * time.Minute)
	r, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: resp.State, Code: good, Now: late})
	if err != nil || r.Done || r.Reason != sdk.ReasonInvalidCode {
		t.Errorf("finish 5 minutes late = %+v, %v", r, err)
	}
	_, err = p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: []byte("nope"), Code: good, Now: now})
	wantKind(t, err, sdk.KindInvalidState, "")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, Code: good, Now: now})
	wantKind(t, err, sdk.KindInvalidState, "")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{Step: "middle", State: resp.State})
	wantKind(t, err, sdk.KindInvalidRequest, "step")
}

func TestEnrollAccountName(t *testing.T) {
	p := configured(t, sdk.Settings{"issuer": strings.Repeat("é", maxIssuerLen/2)})
	for _, u := range []sdk.User{
		{ID: "bob:admin&secret=AAAA"},
		{ID: "ok", AccountName: "evil:name"},
		{},
		{ID: "tab\tname"},
		{ID: strings.Repeat("x", maxAccountLen+1)},
	} {
		_, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollBegin})
		wantKind(t, err, sdk.KindInvalidRequest, "account_name")
	}
	// The ID stands in for a missing account name, and the longest names
	// allowed, fully percent-encoded, still fit the QR code.
	_, key := begin(t, p, sdk.User{ID: "user-7"}, time.Time{})
	if key.AccountName() != "user-7" {
		t.Errorf("account name = %q", key.AccountName())
	}
	_, key = begin(t, p, sdk.User{ID: strings.Repeat("%", maxAccountLen)}, time.Time{})
	if key.AccountName() != strings.Repeat("%", maxAccountLen) {
		t.Errorf("long account name did not round-trip")
	}
}

func TestEnrollSecretsAreFresh(t *testing.T) {
	p := configured(t, nil)
	seen := map[string]bool{}
	for range 20 {
		_, key := begin(t, p, sdk.User{ID: "u"}, time.Time{})
		if seen[key.Secret()] {
			t.Fatal("secret repeated")
		}
		seen[key.Secret()] = true
	}
}

// Settings changed after enrollment must not break the enrollment: the
// state carries its own algorithm, digits and period.
func TestSettingsChangeKeepsEnrollments(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := configured(t, nil)
	resp, key := begin(t, p, sdk.User{ID: "u"}, now)
	code, _ := totp.GenerateCode(key.Secret(), now)
	done, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: resp.State, Code: code, Now: now})
	if err != nil || !done.Done {
		t.Fatalf("finish = %+v, %v", done, err)
	}
	if err := p.Configure(ctx, sdk.Settings{"issuer": "New", "algorithm": "SHA512", "digits": "8", "period": "60"}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	code, _ = totp.GenerateCode(key.Secret(), later) // SHA1, 6 digits, 30 s
	v, err := p.Verify(ctx, sdk.VerifyRequest{State: done.State, Code: code, Now: later})
	if err != nil || v.Outcome != sdk.Allow {
		t.Errorf("verify after settings change = %+v, %v", v, err)
	}
}

// Configure may run while verifies are in flight; run with -race.
func TestConcurrentConfigure(t *testing.T) {
	p := configured(t, nil)
	st := stateFor(t, []byte(rfcSeedSHA1), "SHA1", 6, 30, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if i%2 == 0 {
					skew := []string{"0", "1", "2"}[j%3]
					if err := p.Configure(ctx, sdk.Settings{"issuer": "Acme", "skew": skew}); err != nil {
						t.Error(err)
					}
					continue
				}
				if _, err := p.Verify(ctx, sdk.VerifyRequest{State: st, Code: "000000", Now: time.Unix(1e9, 0)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
