package webauthn_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
	"github.com/twofactor/twofactor/sdk"
)

// TestUserVerificationPolicyInForce: user_verification changed by a
// config reload between a challenge and its answer. The answer, from a
// key that did not verify the user, is checked against the stricter of
// the policy the challenge was issued under and the one in force: an
// admin who makes verification required is obeyed by challenges already
// in flight, and one who relaxes it does not loosen them. Both ceremonies,
// login and registration.
func TestUserVerificationPolicyInForce(t *testing.T) {
	ctx := context.Background()
	uv := func(v string) sdk.Settings { return settings(sdk.Settings{"user_verification": v}) }
	for _, tc := range []struct {
		name           string
		issued, answer string
		want           sdk.Reason // ReasonNone: accepted
	}{
		{"preferred throughout", webauthn.UVPreferred, webauthn.UVPreferred, sdk.ReasonNone},
		{"required after the challenge", webauthn.UVPreferred, webauthn.UVRequired, webauthn.ReasonUserVerificationRequired},
		{"relaxed after the challenge", webauthn.UVRequired, webauthn.UVPreferred, webauthn.ReasonUserVerificationRequired},
	} {
		t.Run("login/"+tc.name, func(t *testing.T) {
			p := newProvider(t, nil)
			a := webauthntest.New(origin) // never verifies the user
			state := enroll(t, p, "alice", a)
			if err := p.Configure(ctx, uv(tc.issued)); err != nil {
				t.Fatal(err)
			}
			now := t0.Add(time.Hour)
			ch := login(t, p, "alice", state, now)
			if err := p.Configure(ctx, uv(tc.answer)); err != nil {
				t.Fatal(err)
			}
			res := verify(t, p, "alice", ch.State, ch.TxID, get(t, a, ch.Public), now.Add(time.Second))
			if tc.want == sdk.ReasonNone && res.Outcome != sdk.Allow || tc.want != sdk.ReasonNone && (res.Outcome != sdk.Deny || res.Reason != tc.want) {
				t.Fatalf("Verify = %s %q, want %q (none: allow)", res.Outcome, res.Reason, tc.want)
			}
		})
		t.Run("registration/"+tc.name, func(t *testing.T) {
			p := newProvider(t, uv(tc.issued))
			begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: t0})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Configure(ctx, uv(tc.answer)); err != nil {
				t.Fatal(err)
			}
			att, err := webauthntest.New(origin).Create(begin.Display.Public)
			if err != nil {
				t.Fatal(err)
			}
			fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: begin.State, Code: att, Now: t0.Add(time.Second)})
			if err != nil || fin.Done != (tc.want == sdk.ReasonNone) || fin.Reason != tc.want {
				t.Fatalf("finish = done %v %q, %v; want %q (none: done)", fin.Done, fin.Reason, err, tc.want)
			}
		})
	}
}
