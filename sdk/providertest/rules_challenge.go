package providertest

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// RuleChallenge checks a provider with a challenge step (protocol 2,
// Capabilities.Challenges): Challenge answers a TxID, an expiry and a
// resend time; with Options.Delivered, the delivered code is nowhere in
// the state or the message, Verify with the TxID and no code polls
// (pending or deny), a wrong code is denied, the code allows once, its
// replay is denied as replayed, and a code is denied as expired at its
// ExpiresAt (time driven through Now).
const RuleChallenge Rule = "challenge-verify"

func (k *kit) challenge(state []byte, factor sdk.Factor, now time.Time) outcome[sdk.ChallengeResponse] {
	c, _ := k.prov.(sdk.Challenger)
	req := sdk.ChallengeRequest{User: kitUser, State: state, Factor: factor, Now: now}
	return call(k, func(ctx context.Context) (sdk.ChallengeResponse, error) { return c.Challenge(ctx, req) })
}

func (k *kit) verifyTx(state []byte, txid, code string, now time.Time) outcome[sdk.VerifyResponse] {
	return k.verifyFactor(state, "", txid, code, now)
}

// delivered asks the test for the code the provider just delivered.
func (k *kit) delivered(t tb, what string) string {
	t.Helper()
	code, err := k.opts.Delivered()
	if err != nil || code == "" {
		t.Fatalf("rule %s: Options.Delivered found no code after %s: %v", RuleChallenge, what, err)
	}
	return code
}

func (k *kit) checkChallenge(t tb) {
	t.Helper()
	factors := k.info.Capabilities.Challenges
	if len(factors) == 0 {
		// Nothing to check, and nothing wrong: most providers have none.
		t.Logf("Info.Capabilities.Challenges is empty: no challenge step")
		return
	}
	if _, ok := k.prov.(sdk.Challenger); !ok {
		t.Fatalf("rule %s: Info.Capabilities.Challenges lists %v, but the provider does not implement sdk.Challenger", RuleChallenge, factors)
	}
	if k.confirmed == nil {
		t.Skipf("no confirmed enrollment (see rule %s)", RuleEnrollRoundTrip)
	}
	state := k.confirmed
	// Past any throttle the enrollment's own send started.
	now := k.now.Add(time.Hour)
	send := func(at time.Time) sdk.ChallengeResponse {
		t.Helper()
		o := k.challenge(state, factors[0], at)
		if b := broken(o); b != "" {
			t.Fatalf("rule %s: Challenge %s", RuleChallenge, b)
		}
		if o.err != nil {
			t.Fatalf("rule %s: Challenge of factor %q failed: %v", RuleChallenge, factors[0], o.err)
		}
		ch := o.val
		switch {
		case ch.TxID == "":
			t.Errorf("rule %s: Challenge returned no TxID; Verify needs it to find the answer's challenge", RuleChallenge)
		case !ch.ExpiresAt.After(at):
			t.Errorf("rule %s: Challenge's ExpiresAt %s is not after Now %s", RuleChallenge, ch.ExpiresAt, at)
		case ch.ResendAfter.Before(at):
			t.Errorf("rule %s: Challenge's ResendAfter %s is before Now %s", RuleChallenge, ch.ResendAfter, at)
		}
		if ch.State != nil {
			state = ch.State
		}
		return ch
	}
	ch := send(now)
	if k.opts.Delivered == nil {
		t.Logf("Options.Delivered is not set: the delivered code cannot be checked")
		return
	}
	code := k.delivered(t, "Challenge")
	if bytes.Contains(state, []byte(code)) || strings.Contains(ch.Message, code) || strings.Contains(ch.Public, code) {
		t.Errorf("rule %s: the delivered code is in the state, Message or Public: keep only a keyed hash", RuleChallenge)
	}
	steps := []struct {
		what, txid, code string
		at               time.Duration
		want             []sdk.Outcome
		reason           sdk.Reason // checked when set
	}{
		{"a poll (TxID, no code)", ch.TxID, "", time.Second, []sdk.Outcome{sdk.Pending, sdk.Deny}, ""},
		{"a wrong code", ch.TxID, wrongCode(code), time.Second, []sdk.Outcome{sdk.Deny}, ""},
		{"the code without its TxID", "", code, time.Second, []sdk.Outcome{sdk.Deny}, ""},
		{"the delivered code", ch.TxID, code, 2 * time.Second, []sdk.Outcome{sdk.Allow}, ""},
		{"the delivered code again", ch.TxID, code, 3 * time.Second, []sdk.Outcome{sdk.Deny}, sdk.ReasonReplayed},
	}
	for _, s := range steps {
		o := k.verifyTx(state, s.txid, s.code, now.Add(s.at))
		if b := broken(o); b != "" {
			t.Fatalf("rule %s: Verify of %s %s", RuleChallenge, s.what, b)
		}
		if o.err != nil {
			if kind := kindOf(o.err); kind != sdk.KindInvalidRequest || s.want[0] == sdk.Allow {
				t.Errorf("rule %s: Verify of %s failed: %v", RuleChallenge, s.what, o.err)
			}
			continue
		}
		ok := false
		for _, w := range s.want {
			ok = ok || o.val.Outcome == w
		}
		if !ok || (s.reason != "" && o.val.Reason != s.reason) {
			t.Errorf("rule %s: Verify of %s = %s %q; want one of %v %s", RuleChallenge, s.what, o.val.Outcome, o.val.Reason, s.want, s.reason)
		}
		if o.val.State != nil {
			state = o.val.State
		}
		if o.val.Outcome == sdk.Allow && o.val.State == nil {
			t.Errorf("rule %s: Verify allowed a delivered code without a new state: nothing records that it was used", RuleChallenge)
		}
	}

	// Expiry, driven through Now: a later challenge's code at its ExpiresAt.
	later := now.Add(time.Hour)
	ch = send(later)
	code = k.delivered(t, "a second Challenge")
	o := k.verifyTx(state, ch.TxID, code, ch.ExpiresAt)
	switch {
	case broken(o) != "":
		t.Errorf("rule %s: Verify at ExpiresAt %s", RuleChallenge, broken(o))
	case o.err != nil:
		t.Errorf("rule %s: Verify at ExpiresAt failed: %v", RuleChallenge, o.err)
	case o.val.Outcome != sdk.Deny || o.val.Reason != sdk.ReasonExpired:
		t.Errorf("rule %s: Verify of a delivered code at its ExpiresAt = %s %q; want %s %q", RuleChallenge, o.val.Outcome, o.val.Reason, sdk.Deny, sdk.ReasonExpired)
	}
}

// wrongCode returns another code of the same length and alphabet.
func wrongCode(code string) string {
	b := []byte(code)
	switch c := b[0]; {
	case c >= '0' && c <= '8', c >= 'a' && c < 'z', c >= 'A' && c < 'Z':
		b[0]++
	default:
		b[0] = '0'
	}
	return string(b)
}
