package webauthn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
	"github.com/twofactor/twofactor/sdk"
)

const origin = "https://login.example.com"

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func settings(extra sdk.Settings) sdk.Settings {
	s := sdk.Settings{"rp_id": "example.com", "origins": origin + ", https://example.com"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func newProvider(t *testing.T, extra sdk.Settings) *webauthn.Provider {
	t.Helper()
	p := webauthn.New()
	if err := p.Configure(context.Background(), settings(extra)); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     sdk.Settings
		field string // "" when valid
	}{
		{"valid", settings(nil), ""},
		{"localhost over http", sdk.Settings{"rp_id": "localhost", "origins": "http://localhost:8080"}, ""},
		{"rp id is an IPv4 address", sdk.Settings{"rp_id": "127.0.0.1", "origins": "http://127.0.0.1:8080"}, "rp_id"},
		{"rp id is an IPv6 address", sdk.Settings{"rp_id": "::1", "origins": "http://[::1]:8080"}, "rp_id"},
		{"rp id with a scheme", sdk.Settings{"rp_id": "https://example.com", "origins": origin}, "rp_id"},
		{"rp id with a port", sdk.Settings{"rp_id": "example.com:443", "origins": origin}, "rp_id"},
		{"origin of another site", settings(sdk.Settings{"origins": "https://example.org"}), "origins"},
		{"origin whose host only ends like the rp id", settings(sdk.Settings{"origins": "https://badexample.com"}), "origins"},
		{"origin not a URL", settings(sdk.Settings{"origins": "login.example.com"}), "origins"},
		{"origin with a path", settings(sdk.Settings{"origins": origin + "/login"}), "origins"},
		{"origin over ftp", settings(sdk.Settings{"origins": "ftp://example.com"}), "origins"},
		{"http origin off localhost", settings(sdk.Settings{"origins": "http://example.com"}), "origins"},
		{"no origin", settings(sdk.Settings{"origins": " , "}), "origins"},
		{"user verification unknown", settings(sdk.Settings{"user_verification": "always"}), "user_verification"},
		{"attestation enterprise", settings(sdk.Settings{"attestation": "enterprise"}), "attestation"},
		{"timeout too short", settings(sdk.Settings{"timeout": "1s"}), "timeout"},
		{"timeout too long", settings(sdk.Settings{"timeout": "1h"}), "timeout"},
		{"display name of two lines", settings(sdk.Settings{"rp_display_name": "a\nb"}), "rp_display_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webauthn.New().Configure(context.Background(), tc.s)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Configure = %v, want nil", err)
				}
				return
			}
			if !errorsIsField(err, tc.field) {
				t.Fatalf("Configure = %v, want an invalid_settings error on %s", err, tc.field)
			}
		})
	}
}

func errorsIsField(err error, field string) bool {
	e, ok := err.(*sdk.Error)
	return ok && e.Kind == sdk.KindInvalidSettings && e.Field == field
}

// enroll registers a on a fresh enrollment and returns the active state.
func enroll(t *testing.T, p *webauthn.Provider, userID string, a *webauthntest.Authenticator) []byte {
	t.Helper()
	return addKey(t, p, userID, sdk.EnrollBegin, nil, a, "")
}

// addKey runs begin (or add, on state) and finish with a.
func addKey(t *testing.T, p *webauthn.Provider, userID string, step sdk.EnrollStep, state []byte, a *webauthntest.Authenticator, label string) []byte {
	t.Helper()
	ctx := context.Background()
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: step, State: state, Now: t0,
		Inputs: map[string]string{"label": label}})
	if err != nil {
		t.Fatalf("Enroll %s: %v", step, err)
	}
	if begin.Display.Public == "" || begin.Done {
		t.Fatalf("Enroll %s = %+v, want creation options and not done", step, begin)
	}
	att, err := a.Create(begin.Display.Public)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: userID}, Step: sdk.EnrollFinish, State: begin.State, Code: att, Now: t0.Add(time.Second)})
	if err != nil || !fin.Done {
		t.Fatalf("Enroll finish = %+v, %v", fin, err)
	}
	return fin.State
}

// login starts a challenge on state at now.
func login(t *testing.T, p *webauthn.Provider, userID string, state []byte, now time.Time) sdk.ChallengeResponse {
	t.Helper()
	ch, err := p.Challenge(context.Background(), sdk.ChallengeRequest{User: sdk.User{ID: userID}, State: state, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if ch.TxID == "" || ch.Public == "" || !ch.ExpiresAt.After(now) {
		t.Fatalf("Challenge = %+v", ch)
	}
	return ch
}

func verify(t *testing.T, p *webauthn.Provider, userID string, state []byte, txid, answer string, now time.Time) sdk.VerifyResponse {
	t.Helper()
	res, err := p.Verify(context.Background(), sdk.VerifyRequest{User: sdk.User{ID: userID}, State: state, TxID: txid, Code: answer, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEnrollAndLogin(t *testing.T) {
	p := newProvider(t, nil)
	a := webauthntest.New(origin)
	state := enroll(t, p, "alice", a)

	ch := login(t, p, "alice", state, t0.Add(time.Minute))
	var opts struct {
		PublicKey struct {
			RPID             string `json:"rpId"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(ch.Public), &opts); err != nil || opts.PublicKey.RPID != "example.com" ||
		len(opts.PublicKey.AllowCredentials) != 1 || opts.PublicKey.AllowCredentials[0].ID != a.ID() {
		t.Fatalf("request options %s (%v): want rpId example.com and the one key", ch.Public, err)
	}
	ans, err := a.Get(ch.Public)
	if err != nil {
		t.Fatal(err)
	}
	res := verify(t, p, "alice", ch.State, ch.TxID, ans, t0.Add(time.Minute+time.Second))
	if res.Outcome != sdk.Allow || res.State == nil || res.Details["credential"] != a.ID() {
		t.Fatalf("Verify = %+v, want allow with a new state naming the key", res)
	}
	// The same answer again, on the state the host stored: single use.
	if again := verify(t, p, "alice", res.State, ch.TxID, ans, t0.Add(time.Minute+2*time.Second)); again.Outcome != sdk.Deny || again.Reason != sdk.ReasonReplayed {
		t.Fatalf("replayed Verify = %+v, want deny replayed", again)
	}
	// A poll without an answer waits.
	ch2 := login(t, p, "alice", res.State, t0.Add(2*time.Minute))
	if poll := verify(t, p, "alice", ch2.State, ch2.TxID, "", t0.Add(2*time.Minute)); poll.Outcome != sdk.Pending {
		t.Fatalf("poll = %+v, want pending", poll)
	}
	if strings.Contains(string(res.State), "alice") {
		t.Errorf("the state holds the user id; the user handle must be random")
	}
}

// TestVerifyRefusals: every way an answer is refused, each with its reason.
func TestVerifyRefusals(t *testing.T) {
	type setup struct {
		p     *webauthn.Provider
		a     *webauthntest.Authenticator
		state []byte // after the challenge
		ch    sdk.ChallengeResponse
	}
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		extra  sdk.Settings
		answer func(t *testing.T, s *setup) (txid, answer string, at time.Time)
		want   sdk.Reason
	}{
		{"wrong origin", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.Origin = "https://login.example.com.evil.test"
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonWrongOrigin},
		{"origin on another port", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.Origin = origin + ":8443"
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonWrongOrigin},
		{"sibling subdomain of the rp id", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.Origin = "https://evil.example.com" // signs for example.com, as the browser lets a subdomain
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonWrongOrigin},
		{"origin over http", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.Origin = "http://login.example.com"
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonWrongOrigin},
		{"answer to the registration's challenge", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			add, err := s.p.Enroll(context.Background(), sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollAdd, State: s.state, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				PublicKey struct{ Challenge string } `json:"publicKey"`
			}
			if err := json.Unmarshal([]byte(add.Display.Public), &o); err != nil {
				t.Fatal(err)
			}
			s.state, s.a.Challenge = add.State, o.PublicKey.Challenge // an assertion over the add's challenge
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, sdk.ReasonReplayed},
		{"wrong rp id", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.RPID = "evil.test"
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonWrongRPID},
		{"expired challenge", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			return s.ch.TxID, get(t, s.a, s.ch.Public), s.ch.ExpiresAt
		}, sdk.ReasonExpired},
		{"answer to an older challenge", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			old := get(t, s.a, s.ch.Public)
			next := login(t, s.p, "alice", s.state, now)
			s.state = next.State
			return next.TxID, old, now
		}, sdk.ReasonReplayed},
		{"superseded challenge", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			ans := get(t, s.a, s.ch.Public)
			s.state = login(t, s.p, "alice", s.state, now).State
			return s.ch.TxID, ans, now
		}, sdk.ReasonExpired},
		{"another user's key", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			bob := webauthntest.New(origin)
			enroll(t, s.p, "bob", bob)
			return s.ch.TxID, get(t, bob, s.ch.Public), now
		}, webauthn.ReasonUnknownCredential},
		{"bad signature", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			return s.ch.TxID, tamperSignature(t, get(t, s.a, s.ch.Public)), now
		}, webauthn.ReasonBadSignature},
		{"sign count went backwards", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.SignCount = 0 // enrolled at 0, and a login is at 1 at least: a clone starts over
			ans := get(t, s.a, s.ch.Public)
			first := verify(t, s.p, "alice", s.state, s.ch.TxID, ans, now)
			if first.Outcome != sdk.Allow {
				t.Fatalf("first login = %+v", first)
			}
			next := login(t, s.p, "alice", first.State, now)
			s.state = next.State
			s.a.SignCount = 0 // the clone's counter: 1 again, not above the stored 1
			return next.TxID, get(t, s.a, next.Public), now
		}, webauthn.ReasonClonedAuthenticator},
		{"user verification missing when required", sdk.Settings{"user_verification": "required"}, func(t *testing.T, s *setup) (string, string, time.Time) {
			s.a.UserVerified = false
			return s.ch.TxID, get(t, s.a, s.ch.Public), now
		}, webauthn.ReasonUserVerificationRequired},
		{"not JSON", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			return s.ch.TxID, "123456", now
		}, sdk.ReasonInvalidCode},
		{"no txid", nil, func(t *testing.T, s *setup) (string, string, time.Time) {
			return "", get(t, s.a, s.ch.Public), now
		}, sdk.ReasonInvalidCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &setup{p: newProvider(t, tc.extra), a: webauthntest.New(origin)}
			s.a.UserVerified = true // enrolled with UV, so "required" enrolls
			enrolled := enroll(t, s.p, "alice", s.a)
			s.ch = login(t, s.p, "alice", enrolled, now.Add(-time.Second))
			s.state = s.ch.State
			txid, ans, at := tc.answer(t, s)
			res := verify(t, s.p, "alice", s.state, txid, ans, at)
			if res.Outcome != sdk.Deny || res.Reason != tc.want {
				t.Fatalf("Verify = %s %q (%s), want deny %q", res.Outcome, res.Reason, res.Message, tc.want)
			}
			if tc.want == webauthn.ReasonClonedAuthenticator && (res.Details["stored_sign_count"] != "1" || res.Details["sign_count"] != "1") {
				t.Errorf("details %v: want the stored and presented counters for the audit log", res.Details)
			}
			// Whatever was refused, the challenge is spent: the right
			// answer to it is refused too.
			if res.State != nil && txid == s.ch.TxID && tc.want != sdk.ReasonExpired {
				if again := verify(t, s.p, "alice", res.State, txid, ans, at); again.Outcome == sdk.Allow {
					t.Errorf("a refused challenge was answered again with an allow")
				}
			}
		})
	}
}

func get(t *testing.T, a *webauthntest.Authenticator, public string) string {
	t.Helper()
	ans, err := a.Get(public)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// tamperSignature flips a bit of the assertion's signature.
func tamperSignature(t *testing.T, answer string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(answer), &m); err != nil {
		t.Fatal(err)
	}
	r := m["response"].(map[string]any)
	sig, _ := base64.RawURLEncoding.DecodeString(r["signature"].(string))
	sig[len(sig)-1] ^= 1
	r["signature"] = base64.RawURLEncoding.EncodeToString(sig)
	b, _ := json.Marshal(m)
	return string(b)
}

// TestSeveralKeys: a second key is added to the active state, both log
// in, a removed key is refused, the last key cannot be removed.
func TestSeveralKeys(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, nil)
	first, second := webauthntest.New(origin), webauthntest.New(origin)
	state := enroll(t, p, "alice", first)
	state = addKey(t, p, "alice", sdk.EnrollAdd, state, second, "Backup key")

	list, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollList, State: state, Now: t0})
	if err != nil || len(list.Credentials) != 2 || list.Credentials[0].ID != first.ID() || list.Credentials[0].Label != "Security key 1" ||
		list.Credentials[1].Label != "Backup key" || list.State != nil {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// Adding the same key again is refused by the options (excluded) and
	// by finish.
	add, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollAdd, State: state, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Create(add.Display.Public); err == nil {
		t.Fatalf("the creation options do not exclude a key already held")
	}

	now := t0.Add(time.Hour)
	for _, a := range []*webauthntest.Authenticator{first, second} {
		ch := login(t, p, "alice", state, now)
		res := verify(t, p, "alice", ch.State, ch.TxID, get(t, a, ch.Public), now)
		if res.Outcome != sdk.Allow {
			t.Fatalf("login with %s = %+v", a.ID(), res)
		}
		state = res.State
	}
	rm, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollRemove, State: state, Credential: first.ID(), Now: now})
	if err != nil || !rm.Done || len(rm.Credentials) != 1 || rm.Credentials[0].ID != second.ID() || rm.Credentials[0].LastUsedAt.IsZero() {
		t.Fatalf("remove = %+v, %v", rm, err)
	}
	state = rm.State
	ch := login(t, p, "alice", state, now)
	if res := verify(t, p, "alice", ch.State, ch.TxID, get(t, first, ch.Public), now); res.Outcome != sdk.Deny || res.Reason != webauthn.ReasonUnknownCredential {
		t.Fatalf("login with the removed key = %+v, want deny %s", res, webauthn.ReasonUnknownCredential)
	}
	for _, tc := range []struct{ name, id string }{{"the last key", second.ID()}, {"an unknown key", first.ID()}, {"no key", ""}} {
		if _, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollRemove, State: state, Credential: tc.id, Now: now}); sdk.KindOf(err) != sdk.KindInvalidRequest {
			t.Errorf("remove %s = %v, want invalid_request", tc.name, err)
		}
	}
}

// TestRegistrationRefusals: finish refuses what login refuses, and a
// registration is single use.
func TestRegistrationRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		extra sdk.Settings
		setup func(a *webauthntest.Authenticator)
		at    time.Duration
		label string
		want  sdk.Reason
	}{
		{"wrong origin", nil, func(a *webauthntest.Authenticator) { a.Origin = "https://evil.test" }, time.Second, "", webauthn.ReasonWrongOrigin},
		{"wrong rp id", nil, func(a *webauthntest.Authenticator) { a.RPID = "evil.test" }, time.Second, "", webauthn.ReasonWrongRPID},
		{"another challenge", nil, func(a *webauthntest.Authenticator) { a.Challenge = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, time.Second, "", sdk.ReasonReplayed},
		{"expired", nil, func(*webauthntest.Authenticator) {}, 2 * time.Minute, "", sdk.ReasonExpired},
		{"user verification required", sdk.Settings{"user_verification": "required"}, func(*webauthntest.Authenticator) {}, time.Second, "", webauthn.ReasonUserVerificationRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, tc.extra)
			a := webauthntest.New(origin)
			tc.setup(a)
			begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: t0})
			if err != nil {
				t.Fatal(err)
			}
			att, err := a.Create(begin.Display.Public)
			if err != nil {
				t.Fatal(err)
			}
			fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: begin.State, Code: att, Now: t0.Add(tc.at)})
			if err != nil || fin.Done || fin.Reason != tc.want {
				t.Fatalf("finish = %+v, %v; want not done, %q", fin, err, tc.want)
			}
			if tc.want == sdk.ReasonExpired {
				return // spent by the clock: no right answer is left to try
			}
			// Whatever was refused, the registration is spent: the right
			// answer to its challenge, on the state the host stores after
			// the refusal (the begin's when none is returned), is refused.
			stored := begin.State
			if fin.State != nil {
				stored = fin.State
			}
			right := webauthntest.New(origin)
			right.UserVerified = true
			att, err = right.Create(begin.Display.Public)
			if err != nil {
				t.Fatal(err)
			}
			again, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: stored, Code: att, Now: t0.Add(2 * time.Second)})
			if err != nil || again.Done || again.Reason != sdk.ReasonReplayed {
				t.Fatalf("the right answer after a refused one: done %v %q, %v; want not done, %q", again.Done, again.Reason, err, sdk.ReasonReplayed)
			}
		})
	}
	t.Run("not an attestation keeps the registration", func(t *testing.T) {
		// As at login: a post that is no attestation at all (a typed
		// code, a truncated body) checked nothing against the challenge,
		// so the browser's real answer may still come.
		p := newProvider(t, nil)
		begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: begin.State, Code: "123456", Now: t0})
		if err != nil || fin.Done || fin.Reason != sdk.ReasonInvalidCode || fin.State != nil {
			t.Fatalf("finish with a typed code = %+v, %v; want invalid_code and no new state", fin, err)
		}
		att, err := webauthntest.New(origin).Create(begin.Display.Public)
		if err != nil {
			t.Fatal(err)
		}
		if fin, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: begin.State, Code: att, Now: t0}); err != nil || !fin.Done {
			t.Fatalf("the real answer after a typed code = %+v, %v; want done", fin, err)
		}
	})
	t.Run("label too long", func(t *testing.T) {
		_, err := newProvider(t, nil).Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: t0,
			Inputs: map[string]string{"label": strings.Repeat("k", 65)}})
		if sdk.KindOf(err) != sdk.KindInvalidRequest {
			t.Fatalf("begin = %v, want invalid_request", err)
		}
	})
	t.Run("finished twice", func(t *testing.T) {
		p := newProvider(t, nil)
		a := webauthntest.New(origin)
		begin, _ := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: t0})
		att, _ := a.Create(begin.Display.Public)
		fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: begin.State, Code: att, Now: t0})
		if err != nil || !fin.Done {
			t.Fatal(fin, err)
		}
		again, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: fin.State, Code: att, Now: t0})
		if err != nil || again.Done || again.Reason != sdk.ReasonReplayed {
			t.Fatalf("second finish = %+v, %v", again, err)
		}
	})
}
