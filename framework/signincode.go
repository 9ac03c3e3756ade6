package framework

import (
	"context"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/sdk"
)

// An enrollment's sign-in code (Enrollment.SignInCode) is what its setup
// said the user will type (sdk.Display.SignInCodeInput): a TOTP
// enrollment's digits are fixed in its state, so a user enrolled with 8
// digits is offered an 8-digit field, and one with 6 a 6-digit field,
// whatever the setting says now. It narrows the field only: the provider
// still checks the code.

// EncodeSignInCode is the text a store keeps for an enrollment's sign-in
// code: "" for none, else "kind:min:max:label" (the label last, so it may
// hold a colon).
func EncodeSignInCode(c sdk.CodeInput) string {
	if c.IsZero() {
		return ""
	}
	return string(c.Kind) + ":" + strconv.Itoa(c.MinLen) + ":" + strconv.Itoa(c.MaxLen) + ":" + c.Label
}

// DecodeSignInCode reads EncodeSignInCode's text. Anything else (a row
// of an earlier release has "") is no sign-in code: the provider's
// Info.CodeInput is offered, which takes every code the enrollment's
// would, so a damaged value never locks anyone out.
func DecodeSignInCode(s string) sdk.CodeInput {
	f := strings.SplitN(s, ":", 4)
	if len(f) != 4 {
		return sdk.CodeInput{}
	}
	lo, err1 := strconv.Atoi(f[1])
	hi, err2 := strconv.Atoi(f[2])
	c := sdk.CodeInput{Kind: sdk.CodeKind(f[0]), MinLen: lo, MaxLen: hi, Label: f[3]}
	if err1 != nil || err2 != nil || c.IsZero() || c.Validate() != nil {
		return sdk.CodeInput{}
	}
	return c
}

// signInCodeOf is the code e's user types to sign in with e's provider
// (info, as it declared at its start): the enrollment's own, when its
// setup gave one within info's, else info's.
func signInCodeOf(info sdk.Info, e Enrollment) sdk.CodeInput {
	if e.SignInCode.Within(info.CodeInput) {
		c := e.SignInCode
		c.Label = info.CodeInput.Label // the provider's name for its sign-in code
		return c
	}
	return info.CodeInput
}

// SignInCode is the code userID types to sign in with provider: its
// enrollment's (signInCodeOf) or, with no active enrollment to read, the
// provider's Info.CodeInput. The field it draws is a hint the provider's
// check stands behind, so a store that cannot be read gives the wider
// field, not an error (the verify that follows reads the store itself).
func (f *Framework) SignInCode(ctx context.Context, userID, provider string) sdk.CodeInput {
	info := f.providerInfo(provider)
	if ValidateUserID(userID) != nil {
		return info.CodeInput
	}
	ctx, cancel := checksContext(ctx)
	defer cancel()
	e, err := f.store.Get(ctx, userID, provider)
	if err != nil || e.Status != StatusActive {
		return info.CodeInput
	}
	return signInCodeOf(info, e)
}

// checkSignInCode holds an enrollment step's sign-in code to the SDK's
// rule and within the provider's Info.CodeInput before it is stored:
// kept, it narrows the user's sign-in field, which must never refuse a
// code the provider declared it takes.
func (f *Framework) checkSignInCode(provider, user string, d sdk.Display) error {
	c := d.SignInCodeInput
	if c.IsZero() {
		return nil
	}
	err := c.Validate()
	if err == nil && !c.Within(f.providerInfo(provider).CodeInput) {
		err = sdk.FieldError(sdk.KindInternal, "sign_in_code_input", "sign-in code is not within the provider's Info.CodeInput")
	}
	return f.refuseCodeInput(provider, user, "sign-in", err)
}
