package providertest

// The rules on factors and on pending out-of-band transactions.

import (
	"context"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// unknownFactor is a factor no provider declares.
const unknownFactor sdk.Factor = "providertest-unknown-factor"

// unknownTxID is a transaction no provider started.
const unknownTxID = "providertest-no-such-tx"

func (k *kit) verifyFactor(state []byte, factor sdk.Factor, txid, code string, now time.Time) outcome[sdk.VerifyResponse] {
	return k.verifyReq(sdk.VerifyRequest{User: kitUser, State: state, Factor: factor, TxID: txid, Code: code, Now: now})
}

// verifyReq calls Verify with req and checks the answer's reason.
func (k *kit) verifyReq(req sdk.VerifyRequest) outcome[sdk.VerifyResponse] {
	o := call(k, func(ctx context.Context) (sdk.VerifyResponse, error) { return k.prov.Verify(ctx, req) })
	if o.err == nil && broken(o) == "" {
		k.checkReason("Verify", o.val.Reason)
	}
	return o
}

// checkFactors: Capabilities.Factors and Challenges agree, a factor the
// provider does not declare is refused (invalid_request) by Verify and
// Challenge, and each declared factor answers: a challenge factor's
// Challenge succeeds, any other's Verify, with a code or without one,
// gives an outcome.
func (k *kit) checkFactors(t tb) {
	t.Helper()
	caps := k.info.Capabilities
	seen := map[sdk.Factor]bool{}
	for _, f := range caps.Factors {
		switch {
		case f == "":
			t.Errorf("rule %s: Capabilities.Factors lists the empty factor; the default is always offered, list only named ones", RuleFactors)
		case seen[f]:
			t.Errorf("rule %s: Capabilities.Factors lists %q twice", RuleFactors, f)
		}
		seen[f] = true
	}
	for _, f := range caps.Challenges {
		if !caps.Offers(f) {
			t.Errorf("rule %s: Capabilities.Challenges lists %q, which Capabilities.Factors does not: the host refuses a factor not in Factors", RuleFactors, f)
		}
	}
	state := k.verifyState(t)

	o := k.verifyFactor(state, unknownFactor, "", "000000", k.now)
	switch {
	case broken(o) != "":
		t.Errorf("rule %s: Verify with factor %q %s", RuleFactors, unknownFactor, broken(o))
	case o.err == nil:
		t.Errorf("rule %s: Verify with undeclared factor %q = %s %q; want an *sdk.Error of kind %s (sdk.Capabilities.CheckFactor)",
			RuleFactors, unknownFactor, o.val.Outcome, o.val.Reason, sdk.KindInvalidRequest)
	case kindOf(o.err) != sdk.KindInvalidRequest:
		t.Errorf("rule %s: Verify with undeclared factor %q returned %v; want an *sdk.Error of kind %s", RuleFactors, unknownFactor, o.err, sdk.KindInvalidRequest)
	}
	if _, ok := k.prov.(sdk.Challenger); ok && len(caps.Challenges) > 0 {
		o := k.challenge(state, unknownFactor, k.now.Add(90*time.Minute))
		switch {
		case broken(o) != "":
			t.Errorf("rule %s: Challenge with factor %q %s", RuleFactors, unknownFactor, broken(o))
		case o.err == nil:
			t.Errorf("rule %s: Challenge with undeclared factor %q succeeded; want an *sdk.Error of kind %s", RuleFactors, unknownFactor, sdk.KindInvalidRequest)
		case kindOf(o.err) != sdk.KindInvalidRequest && kindOf(o.err) != sdk.KindUnsupported:
			t.Errorf("rule %s: Challenge with undeclared factor %q returned %v; want an *sdk.Error of kind %s", RuleFactors, unknownFactor, o.err, sdk.KindInvalidRequest)
		}
	}

	if len(caps.Factors) == 0 {
		t.Logf("Capabilities.Factors is empty: the default factor only")
	}
	for i, f := range caps.Factors {
		if caps.NeedsChallenge(f) {
			o := k.challenge(state, f, k.now.Add(time.Duration(2+i)*time.Hour)) // past any resend throttle
			switch {
			case broken(o) != "":
				t.Errorf("rule %s: Challenge of declared factor %q %s", RuleFactors, f, broken(o))
			case o.err != nil:
				t.Errorf("rule %s: Challenge of declared factor %q failed: %v", RuleFactors, f, o.err)
			case o.val.TxID == "":
				t.Errorf("rule %s: Challenge of declared factor %q returned no TxID", RuleFactors, f)
			}
			continue
		}
		var refusals []error
		for _, code := range []string{"", "000000"} {
			o := k.verifyFactor(state, f, "", code, k.now)
			switch {
			case broken(o) != "":
				t.Errorf("rule %s: Verify of declared factor %q (code %q) %s", RuleFactors, f, code, broken(o))
			case o.err != nil:
				refusals = append(refusals, o.err)
			case o.val.Outcome == sdk.Pending && !caps.Push:
				t.Errorf("rule %s: Verify of factor %q returned pending, but the provider has no Push capability", RuleFactors, f)
			}
		}
		if len(refusals) == 2 {
			t.Errorf("rule %s: Verify of declared factor %q was refused both with a code and without one: %v; %v", RuleFactors, f, refusals[0], refusals[1])
		}
	}
}

// checkPendingPoll (a provider with Capabilities.Push): Verify without a
// code of some factor answers Pending with a TxID; polling it as the host
// does (that TxID, no code, no factor) answers an outcome, and polling a
// TxID the provider never gave is never an allow.
func (k *kit) checkPendingPoll(t tb) {
	t.Helper()
	caps := k.info.Capabilities
	if !caps.Push {
		t.Logf("Info.Capabilities.Push is not set: nothing to poll")
		return
	}
	state := k.verifyState(t)
	tried := []sdk.Factor{}
	for _, f := range append([]sdk.Factor{""}, caps.Factors...) {
		if caps.NeedsChallenge(f) {
			continue
		}
		tried = append(tried, f)
		o := k.verifyFactor(state, f, "", "", k.now)
		if broken(o) != "" {
			t.Fatalf("rule %s: Verify of factor %q without a code %s", RulePendingPoll, f, broken(o))
		}
		if o.err != nil || o.val.Outcome != sdk.Pending {
			continue
		}
		txid := o.val.TxID
		if txid == "" {
			t.Fatalf("rule %s: Verify of factor %q answered pending without a TxID: the host cannot poll it", RulePendingPoll, f)
		}
		if o.val.State != nil {
			state = o.val.State
		}
		// The host polls as it remembers the transaction: its TxID, no
		// code, no factor.
		p := k.verifyFactor(state, "", txid, "", k.now.Add(time.Second))
		switch {
		case broken(p) != "":
			t.Errorf("rule %s: polling TxID %q %s", RulePendingPoll, txid, broken(p))
		case p.err != nil:
			t.Errorf("rule %s: polling the TxID Verify just gave failed: %v", RulePendingPoll, p.err)
		case p.val.Outcome != sdk.Pending && p.val.Outcome != sdk.Allow && p.val.Outcome != sdk.Deny:
			t.Errorf("rule %s: polling the TxID returned unknown outcome %q", RulePendingPoll, p.val.Outcome)
		}
		u := k.verifyFactor(state, "", unknownTxID, "", k.now.Add(2*time.Second))
		switch {
		case broken(u) != "":
			t.Errorf("rule %s: polling an unknown TxID %s", RulePendingPoll, broken(u))
		case u.err != nil:
			if kind := kindOf(u.err); kind != sdk.KindInvalidRequest && kind != sdk.KindInvalidState {
				t.Errorf("rule %s: polling an unknown TxID returned %v; want a Deny, or an *sdk.Error of kind %s or %s", RulePendingPoll, u.err, sdk.KindInvalidRequest, sdk.KindInvalidState)
			}
		case u.val.Outcome == sdk.Allow:
			t.Errorf("rule %s: polling a TxID the provider never gave was ALLOWED", RulePendingPoll)
		}
		return
	}
	if k.confirmed == nil {
		t.Skipf("no factor answered pending against an enrollment that is not confirmed (see rule %s)", RuleEnrollRoundTrip)
	}
	t.Errorf("rule %s: Info.Capabilities.Push is set, but Verify without a code answered pending for none of the factors %q", RulePendingPoll, tried)
}
