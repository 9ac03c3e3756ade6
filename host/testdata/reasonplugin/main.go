// Command reasonplugin is a provider plugin that breaks the SDK's reason
// rule on purpose (sdk.Reason.FromProvider): the code the user types
// chooses the answer, so a host test can check that the host holds a real
// plugin process to the rule. It breaks the code input rule
// (sdk.CodeInput.Validate) too, for the users named in codeInputs, and
// in Info when built with -ldflags "-X main.signIn=kind,min,max,label",
// and the Loosens rule (sdk.Schema.Validate) with -X main.misfitLoosens=1.
// It is a test fixture, not a provider.
package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/twofactor/twofactor/sdk"
)

// signIn is the sign-in code input Info declares, as kind,min,max,label
// (set at build time); empty declares none.
var signIn string

// name and signInText, set with -ldflags "-X main.name=...", are the
// plugin's Texts.Name and Texts.SignIn; empty, it says nothing of itself.
var name, signInText string

func signInCodeInput() sdk.CodeInput {
	if signIn == "" {
		return sdk.CodeInput{}
	}
	f := strings.SplitN(signIn+",,,", ",", 4)
	lo, _ := strconv.Atoi(f[1])
	hi, _ := strconv.Atoi(f[2])
	return sdk.CodeInput{Kind: sdk.CodeKind(f[0]), MinLen: lo, MaxLen: hi, Label: strings.TrimRight(f[3], ",")}
}

// misfitLoosens, set at build time, declares a setting whose Loosens mark
// does not fit it (values on an int).
var misfitLoosens string

func schema() sdk.Schema {
	if misfitLoosens == "" {
		return nil
	}
	return sdk.Schema{{Name: "window", Type: sdk.TypeInt, Default: "1", Help: "codes accepted around now",
		Loosens: &sdk.Loosens{Values: []string{"2"}, Why: "more codes are accepted"}}}
}

// answers maps a typed code to the plugin's answer.
var answers = map[string]sdk.VerifyResponse{
	"111111": {Outcome: sdk.Allow, State: []byte("used")},
	"222222": {Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode},
	// A custom reason in the rule: passed through, counted.
	"333333": {Outcome: sdk.Deny, Reason: "x-card-blocked"},
	// Outside the rule: a word of its own, a host reason that would not
	// count, an allow with a bad reason, text that must not be shown.
	"444444": {Outcome: sdk.Deny, Reason: "wrong_code"},
	"555555": {Outcome: sdk.Deny, Reason: sdk.ReasonNotEnrolled},
	"666666": {Outcome: sdk.Allow, Reason: "ok!", State: []byte("used")},
	"777777": {Outcome: sdk.Deny, Reason: "the code was 123456"},
}

type provider struct{}

func (provider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "rulebreaker", Version: "1.0.0", Description: "breaks the reason rule (test)",
		Capabilities: sdk.Capabilities{Code: true}, CodeInput: signInCodeInput(), Schema: schema(),
		Texts: sdk.Texts{Name: name, SignIn: signInText}}, nil
}

func (provider) Configure(_ context.Context, s sdk.Settings) error {
	_, err := schema().Parse(s)
	return err
}

func (provider) Activate(context.Context) (sdk.Activation, error) {
	return sdk.Activation{Health: sdk.Healthy}, nil
}

// codeInputs maps a user id to the code input its enrollment describes;
// the others enroll at once, with no code.
var codeInputs = map[string]sdk.CodeInput{
	"ci-ok":       {Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: 64, Label: "Card passcode"},
	"ci-negative": {Kind: sdk.CodeDigits, MinLen: -1, MaxLen: 6},
	"ci-huge":     {Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 1 << 20},
	"ci-kind":     {Kind: "hex", MinLen: 6, MaxLen: 6},
	"ci-label":    {Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6, Label: "code\u202e"},
}

// signInCodes maps a user id to the sign-in code its enrollment says it
// fixes (sdk.Display.SignInCodeInput); the enrollment is active at once.
var signInCodes = map[string]sdk.CodeInput{
	"si-ok":    {Kind: sdk.CodeAlphanumeric, MinLen: 10, MaxLen: 10, Label: "not shown"},
	"si-wide":  {Kind: sdk.CodeAlphanumeric, MinLen: 2, MaxLen: 12},
	"si-kind":  {Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6},
	"si-wrong": {Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 1 << 20},
}

func (provider) Enroll(_ context.Context, req sdk.EnrollRequest) (sdk.EnrollResponse, error) {
	if ci, ok := codeInputs[req.User.ID]; ok && req.Step == sdk.EnrollBegin {
		return sdk.EnrollResponse{State: []byte("pending"), Display: sdk.Display{CodeInput: ci}}, nil
	}
	if ci, ok := signInCodes[req.User.ID]; ok && req.Step == sdk.EnrollBegin {
		return sdk.EnrollResponse{State: []byte("enrolled"), Done: true, Display: sdk.Display{SignInCodeInput: ci}}, nil
	}
	return sdk.EnrollResponse{State: []byte("enrolled"), Done: true}, nil
}

func (provider) Verify(_ context.Context, req sdk.VerifyRequest) (sdk.VerifyResponse, error) {
	if a, ok := answers[req.Code]; ok {
		return a, nil
	}
	return sdk.VerifyResponse{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, nil
}

func main() { sdk.Serve(provider{}) }
