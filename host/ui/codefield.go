package ui

import (
	"strconv"

	"github.com/twofactor/twofactor/sdk"
)

// codeField is the setup page's confirmation field, drawn from what the
// provider says its code is (sdk.Display.CodeInput, which the framework
// checked): the host names no provider's code.
type codeField struct {
	Pattern     string // HTML pattern: the code's characters, spaces between
	MaxLength   int    // characters, spaces included
	InputMode   string // the phone keyboard
	Placeholder string
	Label       string // the provider's name for the code; "" for the page's
}

// defaultCodeField is the field for a provider that says nothing (one
// built before CodeInput): up to 12 digits and spaces, as it always was.
var defaultCodeField = codeField{Pattern: "[0-9 ]*", MaxLength: 12, InputMode: "numeric", Placeholder: "123 456"}

// fieldFor turns a provider's CodeInput into the field. The user may
// type spaces ("123 456"), which providers remove: the pattern counts
// only the code's characters, and the length leaves room for a space
// after every other one, within what the host passes on (sdk.MaxCodeLen).
func fieldFor(ci sdk.CodeInput) codeField {
	if ci.IsZero() || ci.Validate() != nil {
		return defaultCodeField
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
