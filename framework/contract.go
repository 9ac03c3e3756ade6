package framework

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/sdk"
)

// This file holds providers to the SDK's closed vocabulary: the factors a
// request may name, the reasons a provider may answer and the code input
// its enrollment display describes.

// checkFactor refuses a factor the provider does not offer
// (sdk.Capabilities.Factors), before any attempt is reserved: bad input
// changes nothing. A protocol 1 plugin predates Factors and is asked as
// before.
func (f *Framework) checkFactor(m *managed, provider, factor string) error {
	info := f.providerInfo(provider)
	if info.Capabilities.Offers(sdk.Factor(factor)) || m.Status().Protocol == 1 {
		return nil
	}
	offered := []string{`"" (the default)`}
	for _, x := range info.Capabilities.Factors {
		offered = append(offered, strconv.Quote(string(x)))
	}
	return errorf(CodeInvalidRequest, nil, "factor %q is not one of provider %q's factors: %s", factor, provider, strings.Join(offered, ", "))
}

// DetailProviderReason is the audit detail that keeps a reason a
// provider returned outside the rule, when it looks like a word.
const DetailProviderReason = "provider_reason"

// printableReason is what an out-of-rule reason may look like to be shown
// in the log and the audit: a short word. Anything else may be text no one
// should see (a provider that put a code there), so only its length is.
var printableReason = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// conformReason enforces the reason rule (sdk.Reason.FromProvider) on a
// provider's answer. A reason outside it becomes a deny with
// sdk.ReasonInvalidReason, which counts against the budget (the host
// cannot tell a broken "wrong code" from anything else, and an answer it
// does not understand is never an allow), and the log and audit say which
// provider broke the rule. The provider's new state, if any, is still
// written: dropping it could undo a code's use.
func (f *Framework) conformReason(provider, user string, res VerifyResult) VerifyResult {
	if res.Reason.FromProvider() {
		return res
	}
	shown := strconv.Itoa(len(res.Reason)) + " bytes, not shown"
	if printableReason.MatchString(string(res.Reason)) {
		shown = string(res.Reason)
	}
	f.log.Error("provider broke the reason rule: a reason must be in the SDK's vocabulary or start with "+sdk.CustomReasonPrefix+"; denied as "+string(sdk.ReasonInvalidReason),
		"provider", provider, "user", user, "outcome", res.Outcome, "reason", shown)
	details := make(map[string]string, len(res.Details)+1)
	for k, v := range res.Details {
		details[k] = v
	}
	details[DetailProviderReason] = shown
	return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidReason, Details: details,
		Message: "the provider answered with a reason outside the SDK's vocabulary"}
}

// checkCodeInput holds an enrollment step's display to the SDK's
// CodeInput rule (sdk.CodeInput.Validate) before anything is stored. A
// field rendered from nonsense (a negative or huge length, a kind the host
// does not know) could not take the code, so the step is refused rather
// than shown; the log and the error say which provider broke the rule and
// how.
func (f *Framework) checkCodeInput(provider, user string, d sdk.Display) error {
	if err := f.refuseCodeInput(provider, user, "confirmation", d.CodeInput.Validate()); err != nil {
		return err
	}
	return f.checkSignInCode(provider, user, d)
}

// refuseCodeInput is the refusal of an enrollment step whose code (what,
// "confirmation" or "sign-in") broke the rule with err; nil when err is.
func (f *Framework) refuseCodeInput(provider, user, what string, err error) error {
	if err == nil {
		return nil
	}
	why := err.Error()
	if e := (*sdk.Error)(nil); errors.As(err, &e) {
		why = e.Field + ": " + e.Message
	}
	f.log.Error("provider broke the code input rule; enrollment step refused", "provider", provider, "user", user, "error", err)
	return errorf(CodeInternal, err, "provider %q described its %s code outside the SDK's rule: %s", provider, what, why)
}
