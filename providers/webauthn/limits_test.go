package webauthn_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/webauthn"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
	"github.com/twofactor/twofactor/sdk"
)

// TestOversizedKeyLosesNothing: keys whose public keys are as large as an
// answer may carry (a padded COSE key) are added to an enrollment until
// they are refused. Whatever was accepted, the state the host stores must
// still be one the provider reads: every key held, the first one
// included, still logs in. A finish that would make the state too large
// to read back is refused with a reason, and leaves the keys as they were.
func TestOversizedKeyLosesNothing(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, nil)
	first := webauthntest.New(origin)
	state := enroll(t, p, "alice", first)
	held := []*webauthntest.Authenticator{first}
	refused := 0
	for i := range 5 {
		big := webauthntest.New(origin)
		big.KeyPadding = 20 << 10
		add, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollAdd, State: state, Now: t0})
		if err != nil {
			t.Fatalf("add %d after %d keys were accepted: %v; the state the last finish returned cannot be read, every key is lost", i, len(held), err)
		}
		att, err := big.Create(add.Display.Public)
		if err != nil {
			t.Fatal(err)
		}
		fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollFinish, State: add.State, Code: att, Now: t0})
		switch {
		case err != nil:
			t.Fatalf("finish %d: %v", i, err)
		case fin.Done:
			state = fin.State
			held = append(held, big)
		case fin.Reason != webauthn.ReasonCredentialTooLarge:
			t.Fatalf("finish %d refused as %q: want %s", i, fin.Reason, webauthn.ReasonCredentialTooLarge)
		default:
			// The refusal spends the registration (the state the host
			// stores comes back without it) and keeps every key held.
			if got, want := ids(t, p, fin.State), ids(t, p, state); !slices.Equal(got, want) {
				t.Fatalf("finish %d refused leaves keys %v, want %v", i, got, want)
			}
			state = fin.State
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("%d keys of 20 KiB each were all kept in a state of at most 64 KiB", len(held)-1)
	}
	now := t0.Add(time.Hour)
	for i, a := range held {
		ch, err := p.Challenge(ctx, sdk.ChallengeRequest{User: sdk.User{ID: "alice"}, State: state, Now: now})
		if err != nil {
			t.Fatalf("a login after %d keys were added (%d refused): %v; the enrollment can no longer be read", len(held)-1, refused, err)
		}
		res := verify(t, p, "alice", ch.State, ch.TxID, get(t, a, ch.Public), now)
		if res.Outcome != sdk.Allow {
			t.Fatalf("login with key %d = %+v", i, res)
		}
		state = res.State
	}
}

// ids lists the ids of the keys state holds.
func ids(t *testing.T, p *webauthn.Provider, state []byte) []string {
	t.Helper()
	l, err := p.Enroll(context.Background(), sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollList, State: state, Now: t0})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var out []string
	for _, c := range l.Credentials {
		out = append(out, c.ID)
	}
	return out
}
