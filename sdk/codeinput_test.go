package sdk_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestCodeInputValidate(t *testing.T) {
	for _, c := range []struct {
		in    sdk.CodeInput
		field string // "" when valid
	}{
		{sdk.CodeInput{}, ""},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8}, ""},
		{sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: sdk.MaxCodeLen, Label: "Duo passcode"}, ""},
		{sdk.CodeInput{Label: "a label alone"}, "code_input.kind"},
		{sdk.CodeInput{Kind: "hex", MinLen: 6, MaxLen: 6}, "code_input.kind"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 0, MaxLen: 6}, "code_input.min_len"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: -1, MaxLen: 6}, "code_input.min_len"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 65, MaxLen: 65}, "code_input.min_len"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 8, MaxLen: 6}, "code_input.max_len"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 1 << 40}, "code_input.max_len"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6, Label: "code\u202e"}, "code_input.label"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6, Label: "\xff"}, "code_input.label"},
		{sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6, Label: strings.Repeat("é", 65)}, "code_input.label"},
	} {
		err := c.in.Validate()
		var e *sdk.Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.in, err)
		case c.field != "" && (!errors.As(err, &e) || e.Field != c.field || e.Kind != sdk.KindInternal):
			t.Errorf("%+v: %v, want an internal error on %s", c.in, err, c.field)
		}
	}
	// An unknown kind that is not a short word is not shown: it could be
	// anything.
	if err := (sdk.CodeInput{Kind: "the code is 123456", MinLen: 6, MaxLen: 6}).Validate(); err == nil || strings.Contains(err.Error(), "123456") {
		t.Errorf("unknown kind error %v shows the kind", err)
	}
}

// A provider whose enrollment is confirmed with a code says which: the
// host offers a field that takes it.
func ExampleCodeInput() {
	d := sdk.Display{
		Instructions: "Enter a passcode from Duo Mobile or touch your YubiKey.",
		CodeInput:    sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: 64, Label: "Duo passcode"},
	}
	fmt.Println(d.CodeInput.Validate())
	fmt.Println(sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 100}.Validate())
	// Output:
	// <nil>
	// internal: code_input.max_len: max length 100 is not between the min length 6 and 64
}
