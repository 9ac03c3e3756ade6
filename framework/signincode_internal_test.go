package framework

import (
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestSignInCodeOf: an enrollment's sign-in code narrows the provider's
// only when it lies within it; none (an imported enrollment, a row of an
// earlier release), another kind, a length outside the range, or a
// provider that declares nothing give the provider's own. What a store
// keeps reads back as written; damaged text reads as none.
func TestSignInCodeOf(t *testing.T) {
	info := sdk.Info{CodeInput: sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 8, Label: "App code"}}
	digits := func(lo, hi int) sdk.CodeInput { return sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: lo, MaxLen: hi} }
	labelled := func(c sdk.CodeInput) sdk.CodeInput { c.Label = "App code"; return c }
	for _, tc := range []struct {
		name  string
		info  sdk.Info
		saved sdk.CodeInput
		want  sdk.CodeInput
	}{
		{"six", info, digits(6, 6), labelled(digits(6, 6))},
		{"eight", info, digits(8, 8), labelled(digits(8, 8))},
		{"none: imported", info, sdk.CodeInput{}, info.CodeInput},
		{"shorter than the range", info, digits(4, 4), info.CodeInput},
		{"longer than the range", info, digits(6, 9), info.CodeInput},
		{"another kind", info, sdk.CodeInput{Kind: sdk.CodeAlphanumeric, MinLen: 6, MaxLen: 6}, info.CodeInput},
		{"provider declares nothing", sdk.Info{}, digits(6, 6), sdk.CodeInput{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signInCodeOf(tc.info, Enrollment{SignInCode: tc.saved}); got != tc.want {
				t.Errorf("signInCodeOf = %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, c := range []sdk.CodeInput{{}, digits(8, 8), {Kind: sdk.CodeAlphanumeric, MinLen: 1, MaxLen: 64, Label: "a: b, c"}} {
		if got := DecodeSignInCode(EncodeSignInCode(c)); got != c {
			t.Errorf("round trip of %+v: %+v", c, got)
		}
	}
	for _, s := range []string{"?", "digits:6", "digits:x:8:", "digits:8:6:", "hex:6:6:", "digits:0:6:", "digits:6:65:"} {
		if got := DecodeSignInCode(s); !got.IsZero() {
			t.Errorf("DecodeSignInCode(%q) = %+v, want none", s, got)
		}
	}
}
