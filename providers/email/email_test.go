package email_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/providers/email/emailtest"
	"github.com/twofactor/twofactor/sdk"
)

const testKey = "c2l4dHktZm91ciBieXRlcyBvZiBhIHRlc3Qga2V5IG1hZGUgZm9yIHRoaXMgdGVzdA==" // test value only

func settings(srv *emailtest.Server, extra sdk.Settings) sdk.Settings {
	s := sdk.Settings{
		"smtp_host": srv.Host, "smtp_port": strconv.Itoa(srv.Port), "smtp_tls": email.TLSNone,
		"from": "ACME <no-reply@acme.example>", "issuer": "ACME", "code_key": testKey,
	}
	if srv.CAFile != "" {
		s["smtp_tls"], s["smtp_ca_file"] = email.TLSStartTLS, srv.CAFile
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func TestConfigureRefuses(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	tests := []struct {
		name  string
		extra sdk.Settings
		field string
	}{
		{"clear text to another host", sdk.Settings{"smtp_host": "smtp.example.com"}, "smtp_tls"},
		{"short key", sdk.Settings{"code_key": "c2hvcnQ="}, "code_key"},
		{"not base64 key", sdk.Settings{"code_key": "not base64!"}, "code_key"},
		{"bad from", sdk.Settings{"from": "nobody"}, "from"},
		{"five digits", sdk.Settings{"digits": "5"}, "digits"},
		{"nine digits", sdk.Settings{"digits": "9"}, "digits"},
		{"password without user", sdk.Settings{"smtp_password": "x"}, "smtp_username"},
		{"resend after longer than the code lives", sdk.Settings{"resend_after": "10m"}, "resend_after"},
		{"ca file missing", sdk.Settings{"smtp_tls": email.TLSStartTLS, "smtp_ca_file": "/nonexistent.pem"}, "smtp_ca_file"},
		{"two-line issuer", sdk.Settings{"issuer": "A\r\nBcc: x@y"}, "issuer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := email.New().Configure(t.Context(), settings(srv, tc.extra))
			if !errorsIsField(err, tc.field) {
				t.Errorf("Configure = %v, want invalid_settings on %s", err, tc.field)
			}
		})
	}
}

func errorsIsField(err error, field string) bool {
	return errors.Is(err, &sdk.Error{Kind: sdk.KindInvalidSettings, Field: field})
}

// TestEmailFlow runs enrollment and logins against a real SMTP server
// with STARTTLS and AUTH, driving time through the requests' Now.
func TestEmailFlow(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
	var logs bytes.Buffer
	p := email.New(email.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})))
	ctx := t.Context()
	if err := p.Configure(ctx, settings(srv, sdk.Settings{"smtp_username": "mailer", "smtp_password": "s3cret", "digits": "8"})); err != nil {
		t.Fatal(err)
	}
	if a, err := p.Activate(ctx); err != nil || a.Health != sdk.Healthy {
		t.Fatalf("Activate = %+v, %v", a, err)
	}
	user := sdk.User{ID: "alice"}
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	var codes []string

	if _, err := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollBegin, Now: now, Inputs: map[string]string{"email": "Alice <a@x.example>"}}); sdk.KindOf(err) != sdk.KindInvalidRequest {
		t.Errorf("enroll with a display name: %v, want invalid_request", err)
	}
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollBegin, Now: now, Inputs: map[string]string{"email": "alice@x.example"}})
	if err != nil || !strings.Contains(begin.Display.Instructions, "a***@x.example") {
		t.Fatalf("enroll begin: %+v, %v", begin, err)
	}
	code := srv.LastCode(t, 0, "alice@x.example")
	codes = append(codes, code)
	if len(code) != 8 || bytes.Contains(begin.State, []byte(code)) {
		t.Fatalf("code %q: 8 digits, and never in the state", code)
	}
	msg := srv.Messages()[0]
	if msg.From != "no-reply@acme.example" || !strings.Contains(msg.Data, "text/html") || !strings.Contains(msg.Data, "ACME") {
		t.Errorf("mail: from %q, want text and HTML naming the issuer:\n%s", msg.From, msg.Data)
	}
	// Wrong codes are counted in the state each refusal returns: the host
	// stores it, so the next confirm sees it; the code is dropped at
	// email.MaxConfirmWrong.
	state := begin.State
	for i := range email.MaxConfirmWrong {
		r, _ := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollFinish, State: state, Code: wrong(code), Now: now})
		if r.Done || r.Reason != sdk.ReasonInvalidCode || r.State == nil {
			t.Fatalf("confirm with wrong code %d: %+v", i+1, r)
		}
		if i == email.MaxConfirmWrong-1 {
			if r, _ := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollFinish, State: r.State, Code: code, Now: now}); r.Done || r.Reason != sdk.ReasonExpired {
				t.Errorf("the right code after %d wrong ones: %+v, want expired", email.MaxConfirmWrong, r)
			}
			break
		}
		state = r.State
	}
	fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: user, Step: sdk.EnrollFinish, State: state, Code: code[:4] + " " + code[4:], Now: now.Add(time.Minute)})
	if err != nil || !fin.Done {
		t.Fatalf("confirm: %+v, %v", fin, err)
	}
	st := fin.State

	// A login: challenge, then verify with its txid.
	challenge := func(at time.Time) (sdk.ChallengeResponse, string) {
		t.Helper()
		n := len(srv.Messages())
		ch, err := p.Challenge(ctx, sdk.ChallengeRequest{User: user, State: st, Now: at})
		if err != nil {
			t.Fatalf("Challenge at %s: %v", at, err)
		}
		st = ch.State
		c := srv.LastCode(t, n, "alice@x.example")
		codes = append(codes, c)
		return ch, c
	}
	verify := func(tx, code string, at time.Time) sdk.VerifyResponse {
		t.Helper()
		r, err := p.Verify(ctx, sdk.VerifyRequest{User: user, State: st, TxID: tx, Code: code, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		if r.State != nil {
			st = r.State
		}
		return r
	}
	t0 := now.Add(time.Hour)
	ch, code := challenge(t0)
	if !ch.ExpiresAt.Equal(t0.Add(5*time.Minute)) || !ch.ResendAfter.Equal(t0.Add(30*time.Second)) || ch.TxID == "" {
		t.Errorf("challenge: %+v, want expiry in 5 min, resend after 30 s", ch)
	}
	if _, err := p.Challenge(ctx, sdk.ChallengeRequest{User: user, State: st, Now: t0.Add(10 * time.Second)}); sdk.KindOf(err) != sdk.KindInvalidRequest {
		t.Errorf("a second code 10 s later: %v, want refused (resend throttle)", err)
	}
	steps := []struct {
		name, code string
		at         time.Duration
		outcome    sdk.Outcome
		reason     sdk.Reason
	}{
		{"poll", "", time.Second, sdk.Pending, sdk.ReasonWaiting},
		{"wrong code", wrong(code), time.Second, sdk.Deny, sdk.ReasonInvalidCode},
		{"short code", code[:6], time.Second, sdk.Deny, sdk.ReasonInvalidCode},
		{"right code", code, 2 * time.Second, sdk.Allow, ""},
		{"replay", code, 3 * time.Second, sdk.Deny, sdk.ReasonReplayed},
	}
	for _, s := range steps {
		if r := verify(ch.TxID, s.code, t0.Add(s.at)); r.Outcome != s.outcome || r.Reason != s.reason {
			t.Errorf("%s: %+v, want %s %s", s.name, r, s.outcome, s.reason)
		}
	}

	// Expiry: the code stops working at ExpiresAt.
	t1 := t0.Add(time.Hour)
	ch, code = challenge(t1)
	if r := verify(ch.TxID, code, ch.ExpiresAt); r.Outcome != sdk.Deny || r.Reason != sdk.ReasonExpired {
		t.Errorf("code at its expiry: %+v, want expired", r)
	}
	// A resend supersedes the earlier code.
	t2 := t1.Add(time.Hour)
	old, oldCode := challenge(t2)
	ch, code = challenge(t2.Add(30 * time.Second))
	if r := verify(old.TxID, oldCode, t2.Add(31*time.Second)); r.Outcome != sdk.Deny {
		t.Errorf("the superseded code: %+v, want deny", r)
	}
	if r := verify(ch.TxID, code, t2.Add(32*time.Second)); r.Outcome != sdk.Allow {
		t.Errorf("the resent code: %+v, want allow", r)
	}

	// SMTP down: unavailable, nothing stored; Activate says unhealthy.
	srv.Stop()
	if _, err := p.Challenge(ctx, sdk.ChallengeRequest{User: user, State: st, Now: t2.Add(time.Hour)}); sdk.KindOf(err) != sdk.KindUnavailable {
		t.Errorf("challenge with SMTP down: %v, want unavailable", err)
	}
	if a, err := p.Activate(ctx); err != nil || a.Health != sdk.Unhealthy || len(a.Diagnostics) != 1 || a.Diagnostics[0].Fix == "" {
		t.Errorf("Activate with SMTP down: %+v, %v", a, err)
	}
	for _, c := range codes {
		if strings.Contains(logs.String(), c) {
			t.Errorf("a code is in the log:\n%s", logs.String())
		}
	}
}

// wrong returns another code of the same length.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestWrongSMTPPassword(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret"})
	p := email.New()
	if err := p.Configure(context.Background(), settings(srv, sdk.Settings{"smtp_username": "mailer", "smtp_password": "wrong"})); err != nil {
		t.Fatal(err)
	}
	_, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "bob"}, Step: sdk.EnrollBegin, Now: time.Now(), Inputs: map[string]string{"email": "bob@x.example"}})
	if sdk.KindOf(err) != sdk.KindInvalidCredentials || strings.Contains(err.Error(), "wrong") {
		t.Errorf("enroll with a wrong SMTP password: %v, want invalid_credentials without the password", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("a mail went out without AUTH")
	}
}

// TestTLSModes: each smtp_tls mode delivers a code to a server that
// speaks it, and STARTTLS is never skipped: against a server that does not
// offer it, nothing is sent (no downgrade to clear text).
func TestTLSModes(t *testing.T) {
	tests := []struct {
		name      string
		opts      emailtest.Options
		mode      string
		delivered bool
	}{
		{"implicit", emailtest.Options{ImplicitTLS: true}, email.TLSImplicit, true},
		{"starttls", emailtest.Options{StartTLS: true}, email.TLSStartTLS, true},
		{"none on loopback", emailtest.Options{}, email.TLSNone, true},
		{"starttls to a server without it", emailtest.Options{}, email.TLSStartTLS, false},
		{"implicit to a clear-text server", emailtest.Options{}, email.TLSImplicit, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := emailtest.Start(t, tc.opts)
			s := settings(srv, sdk.Settings{"smtp_tls": tc.mode})
			if srv.CAFile == "" && tc.mode != email.TLSNone {
				delete(s, "smtp_ca_file")
			}
			p := email.New()
			if err := p.Configure(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "carol"}, Step: sdk.EnrollBegin, Now: time.Now(),
				Inputs: map[string]string{"email": "carol@x.example"}})
			if got := err == nil && len(srv.Messages()) == 1; got != tc.delivered {
				t.Errorf("delivered %v (err %v, %d mails), want %v", got, err, len(srv.Messages()), tc.delivered)
			}
			if !tc.delivered && sdk.KindOf(err) != sdk.KindUnavailable {
				t.Errorf("refused send: %v, want unavailable", err)
			}
		})
	}
}
