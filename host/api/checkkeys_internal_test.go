package api

import (
	"fmt"
	"testing"
)

// checkKeysCases are bodies whose keys checkKeys must judge as
// checkKeysSlow does: duplicates, unknown and case-folded keys, escapes,
// nesting, odd spacing, and invalid JSON in many places.
var checkKeysCases = []string{
	`{"provider":"totp","audience":"client","code":"123456"}`,
	`{"provider":"totp","audience":"client","code":"123456","code":"654321"}`,
	`{"provider":"totp","Code":"1"}`,
	`{"provider":"totp","cod\u0065":"1","code":"2"}`,
	`{"provider":"totp","c\"ode":"1"}`,
	`{"provider":"tötp","code":"1"}`,
	`{"prövider":"totp"}`,
	` { "provider" : "totp" , "credential" : {"a":[1,2,{"b":"}"}],"c":"\\\""} , "code":"1" } `,
	`{"credential":{"provider":1,"provider":2},"provider":"x"}`,
	`{"credential":[{"x":"]"},"\""],"audience":"a","credential":null}`,
	`{"remember_device":true,"remember_device":false}`,
	`{"provider":-1.5e+3,"audience":null,"txid":false}`,
	`{}`, `[]`, `"x"`, `1`, ``, `{`, `{"provider"`, `{"provider":}`, `{"provider":"x",}`,
	`{"provider":tru,"provider":1}`, `{"unknown":tru}`, `{"code":"1"} {"code":"2"}`,
	`{"a":1,"a":2`, `{"provider":"x"`, "{\"provider\":\"\x01\"}", `{"x":1e}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17}`,
}

func sameCheck(t *testing.T, body string) {
	t.Helper()
	fast := fmt.Sprint(checkKeys([]byte(body), &verifyRequest{}))
	slow := fmt.Sprint(checkKeysSlow([]byte(body), &verifyRequest{}))
	if fast != slow {
		t.Errorf("%q: checkKeys says %s, checkKeysSlow %s", body, fast, slow)
	}
}

// TestCheckKeysFastPath: the fast path answers as the decoder's tokens do,
// and does answer for an ordinary body (so the test does not hold only
// because everything fell back).
func TestCheckKeysFastPath(t *testing.T) {
	for _, body := range checkKeysCases {
		sameCheck(t, body)
	}
	keys, ok := topLevelKeys([]byte(checkKeysCases[7]))
	if !ok || fmt.Sprint(keys) != "[provider credential code]" {
		t.Errorf("topLevelKeys = %v, %v", keys, ok)
	}
}

// FuzzCheckKeys holds checkKeys to checkKeysSlow on any body.
func FuzzCheckKeys(f *testing.F) {
	for _, body := range checkKeysCases {
		f.Add(body)
	}
	f.Fuzz(sameCheck)
}

// BenchmarkCheckKeys is checkKeys on a login's body, and checkKeysSlow for
// comparison.
func BenchmarkCheckKeys(b *testing.B) {
	body := []byte(`{"provider":"totp","audience":"client","code":"123456","client_ip":"203.0.113.7"}`)
	for _, bc := range []struct {
		name string
		fn   func([]byte, any) error
	}{{"fast", checkKeys}, {"slow", checkKeysSlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.fn(body, &verifyRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
