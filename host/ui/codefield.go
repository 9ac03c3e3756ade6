package ui

import (
	"strconv"

	"github.com/twofactor/twofactor/sdk"
)

// codeField is a code field (the setup page's confirmation, the sign-in
// page's code or passcode), drawn from what the provider says its code is
// (sdk.Display.CodeInput, sdk.Info.CodeInput, which the framework
// checked): the host names no provider's code.
type codeField struct {
	Pattern     string // HTML pattern: the code's characters, spaces between; "" for none
	MaxLength   int    // characters, spaces included
	InputMode   string // the phone keyboard
	Placeholder string
	Label       string // the provider's name for the code; "" for the page's
}

// defaultCodeField is the field for a provider that says nothing (one
// built before CodeInput): up to 12 digits and spaces, as it always was.
var defaultCodeField = codeField{Pattern: "[0-9 ]*", MaxLength: 12, InputMode: "numeric", Placeholder: "123 456"}

// defaultPasscodeField is a push provider's passcode field when it says
// nothing, as it always was: up to 44 characters, unchecked.
var defaultPasscodeField = codeField{MaxLength: 44, InputMode: "numeric", Placeholder: "123456"}

// fieldFor turns a provider's CodeInput into the field. The user may
// type spaces ("123 456"), which providers remove: the pattern counts
// only the code's characters, and the length leaves room for a space
// after every other one, within what the host passes on (sdk.MaxCodeLen).
// A provider that says nothing gets def.
func fieldFor(ci sdk.CodeInput, def codeField) codeField {
	if ci.IsZero() || ci.Validate() != nil {
		return def
	}
	f := codeField{MaxLength: min(ci.MaxLen+ci.MaxLen/2, sdk.MaxCodeLen), Label: ci.Label}
	class := "[0-9]"
	switch ci.Kind {
	case sdk.CodeDigits:
		f.InputMode, f.Placeholder = "numeric", "123 456"
	case sdk.CodeAlphanumeric:
		class, f.InputMode = "[A-Za-z0-9]", "text"
	}
	f.Pattern = "( *" + class + "){" + strconv.Itoa(ci.MinLen) + "," + strconv.Itoa(ci.MaxLen) + "} *"
	return f
}
