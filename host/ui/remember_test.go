package ui

import (
	"crypto/tls"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twofactor/twofactor/framework"
)

func TestDeviceCookieName(t *testing.T) {
	u := &UI{sig: testSigner(t, 1)}
	alice := u.deviceCookieName(claims{User: "alice", Audience: "client"})
	if len(alice) != len(deviceCookiePrefix)+16 || !strings.HasPrefix(alice, deviceCookiePrefix) || strings.Contains(alice, "alice") {
		t.Errorf("name %q", alice)
	}
	if alice != u.deviceCookieName(claims{User: "alice", Audience: "client", Provider: "totp", Nonce: "other link"}) {
		t.Error("the name depends on more than user and audience")
	}
	for _, c := range []claims{{User: "bob", Audience: "client"}, {User: "alice", Audience: "staff"}, {User: "client\x00alice", Audience: ""}} {
		if u.deviceCookieName(c) == alice {
			t.Errorf("%+v shares alice's cookie", c)
		}
	}
	if (&UI{sig: testSigner(t, 2)}).deviceCookieName(claims{User: "alice", Audience: "client"}) == alice {
		t.Error("the name does not depend on the key")
	}
}

func TestSecureRequest(t *testing.T) {
	for _, tt := range []struct {
		header, value string
		tls, want     bool
	}{
		{"", "", false, false},
		{"", "", true, true},
		{"X-Forwarded-Proto", "https", false, true},
		{"X-Forwarded-Proto", "HTTPS ", false, true},
		{"X-Forwarded-Proto", "http", false, false},
		{"Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43", false, true},
		{"Forwarded", `proto="https"`, false, true},
		{"Forwarded", "proto=http", false, false},
	} {
		r := httptest.NewRequest("GET", "/ui/verify", nil)
		if tt.header != "" {
			r.Header.Set(tt.header, tt.value)
		}
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := secureRequest(r); got != tt.want {
			t.Errorf("%s: %q, TLS %v: %v, want %v", tt.header, tt.value, tt.tls, got, tt.want)
		}
	}
}

func TestDeviceLabel(t *testing.T) {
	for ua, want := range map[string]string{
		"":                           "Web browser",
		"   ":                        "Web browser",
		"Firefox/140.0":              "Firefox/140.0",
		"A\u200bB\xffC\u00e9":        "ABCé",
		strings.Repeat("é", 300):     strings.Repeat("é", framework.MaxDeviceLabel),
		"Mozilla/5.0 (X11)\t Chrome": "Mozilla/5.0 (X11) Chrome",
	} {
		r := httptest.NewRequest("GET", "/ui/verify", nil)
		r.Header.Set("User-Agent", ua)
		got := deviceLabel(r)
		if got != want || utf8.RuneCountInString(got) > framework.MaxDeviceLabel {
			t.Errorf("label of %.30q = %.30q, want %.30q", ua, got, want)
		}
	}
}

func TestEncodeProviders(t *testing.T) {
	ps := []framework.ChallengeProvider{{Name: "duo", Factors: []string{"push", "passcode"}}, {Name: "totp", Factors: []string{"code"}}, {Name: "new", Factors: []string{}},
		{Name: "email", Factors: []string{"code"}, ChallengeFirst: []string{"code"}}}
	s := encodeProviders(ps)
	if s != "duo:push+passcode,totp:code,new:,email:code*" {
		t.Errorf("encoded %q", s)
	}
	if got := decodeProviders(s); !reflect.DeepEqual(got, ps) {
		t.Errorf("decoded %+v", got)
	}
	if decodeProviders("") != nil {
		t.Error("no providers decode to some")
	}
}

// A form token carries its decision, leads back to its link and lives as
// long as the link; a wait token derived from it carries the decision on.
func TestFormTokens(t *testing.T) {
	s := testSigner(t, 1)
	now := time.Unix(1_800_000_000, 0)
	link := claims{Page: PageVerify, User: "alice", Audience: "client", Nonce: "n", Exp: now.Add(10 * time.Minute).Unix()}
	d := decision{Decision: "verify", Why: "enrolled", Providers: "totp:code", Days: 30, Recovery: true}
	f := link.form(d)
	if f.Kind != kindForm || f.Exp != link.Exp || f.LinkExp != link.Exp || f.decision != d {
		t.Errorf("form claims %+v", f)
	}
	if s.token(f.link()) != s.token(link) {
		t.Error("a form token does not lead back to its link")
	}
	got, err := s.parse(s.token(f), now)
	if err != nil || got != f {
		t.Errorf("parse = %+v, %v", got, err)
	}
	w := f.derive(kindWait, now, waitTTL)
	if w.decision != (decision{}) || w.LinkExp != link.Exp {
		t.Errorf("derive keeps the decision: %+v", w)
	}
	if w.form(f.decision) != f {
		t.Error("the form token rebuilt from a wait token differs")
	}
}

// TestLockedView: the lockout page counts down a backoff, but not the lock
// only an admin or a recovery code ends (100 years in the framework).
func TestLockedView(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	u := &UI{sig: testSigner(t, 1), now: func() time.Time { return now }}
	link := claims{Page: PageVerify, User: "alice", Audience: "client", Nonce: "n", Exp: now.Add(10 * time.Minute).Unix()}
	for _, tt := range []struct {
		until     time.Duration
		lead      string
		retry     bool
		framework string
	}{
		{90 * time.Second, "Try again in 2 minutes.", true, "try again in 2 minutes"},
		{29500 * time.Millisecond, "Try again in 30 seconds.", true, "try again in 30 seconds"},
		{-time.Second, "You can try again now.", true, ""},
		{time.Hour, "Try again in an hour.", false, "try again in an hour"},
		{100 * 365 * 24 * time.Hour, "Ask support to unlock it.", false, "ask support to unlock it"},
	} {
		f := link.form(decision{Decision: "deny", Why: "locked_out", Recovery: true, Until: now.Add(tt.until).UnixMilli()})
		v := u.lockedView(f, u.sig.token(f))
		lead := v.Lead
		if v.Countdown != "" {
			lead += " Try again in " + v.Countdown + "." // as base.html writes it
		}
		if !strings.HasSuffix(lead, tt.lead) || (v.RetryURL != "") != tt.retry || !v.Recovery || !v.RecoveryOpen {
			t.Errorf("locked for %v: lead %q, retry %q, recovery %v", tt.until, v.Lead, v.RetryURL, v.Recovery)
		}
		if tt.framework != "" {
			msg := u.frameworkMessage(&framework.Error{Code: framework.CodeLockedOut, RetryAfter: tt.until})
			if !strings.Contains(msg, tt.framework) {
				t.Errorf("locked for %v: %q", tt.until, msg)
			}
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "a second", time.Second: "a second", 1500 * time.Millisecond: "2 seconds", 30 * time.Second: "30 seconds",
		59500 * time.Millisecond: "a minute", time.Minute: "a minute", 61 * time.Second: "2 minutes", 90 * time.Second: "2 minutes",
		59 * time.Minute: "59 minutes", time.Hour: "an hour", time.Hour + time.Second: "2 hours", 47 * time.Hour: "47 hours",
		48 * time.Hour: "2 days", 49 * time.Hour: "3 days",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
