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
	` { "provider" : "totp" ,"audience":"client", "code" : "1\"}" , "txid":null,"remember_device" : true } `,
	`{"credential":{"id":"x","response":{"a":1,"a":2}},"provider":"x"}`,
	`{"credential":[{"x":1},{"x":1,"x":2}]}`, `{"credential":[[],{}],"code":"1","code":"2"}`,
	`{"credential":{"Id":1,"id":2}}`, `{"code":{"a":1,"a":2}}`, `{"code":[{"a":1,"a":2}]}`,
}

// A flat body the fast path answers, with odd spacing and escapes inside
// values.
const flatBody = ` { "provider" : "totp" ,"audience":"client", "code" : "1\"}" , "txid":null,"remember_device" : true } `

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
	keys, ok := topLevelKeys([]byte(flatBody))
	if !ok || fmt.Sprint(keys) != "[provider audience code txid remember_device]" {
		t.Errorf("topLevelKeys = %v, %v", keys, ok)
	}
	// A nested object or array has keys of its own to check: the slow
	// path walks it.
	for _, body := range []string{checkKeysCases[7], `{"credential":[],"code":"1"}`} {
		if keys, ok := topLevelKeys([]byte(body)); ok {
			t.Errorf("topLevelKeys answers %v for %s, whose nested keys it does not check", keys, body)
		}
	}
}

// TestCheckKeysNested: a key given twice, or a field named in another
// case, is refused at every depth of every request body: in a nested
// struct (a step-up), in a map (inputs: exact duplicates only, a name in
// another case is the provider's schema's to refuse) and in an opaque
// value the provider reads (a WebAuthn credential: exact duplicates).
func TestCheckKeysNested(t *testing.T) {
	for _, c := range []struct {
		v    any
		body string
		want string // the error, "" for none
	}{
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"totp","code":"123456"},"client_ip":"192.0.2.1"}`, ""},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"totp","code":"000000","code":"123456"}}`, `duplicate field "step_up.code"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"recovery","provider":"totp","code":"123456"}}`, `duplicate field "step_up.provider"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"totp","Code":"123456"}}`, `unknown field "step_up.Code"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"totp","cod\u0065":"1","code":"2"}}`, `duplicate field "step_up.code"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"totp","code":"1"},"step_up":{}}`, `duplicate field "step_up"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"webauthn","credential":{"id":"a","response":{"b":1,"b":2}}}}`, `duplicate field "step_up.credential.response.b"`},
		{&stepUpRequest{}, `{"audience":"client","step_up":{"provider":"webauthn","credential":{"id":"a","Id":"b","rawId":"c","response":[{"x":1}]}}}`, ""},
		{&stepUpRequest{}, `{"audience":"client","step_up":null}`, ""},
		{&enrollRequest{}, `{"provider":"email","audience":"client","inputs":{"email":"a@example.com"}}`, ""},
		{&enrollRequest{}, `{"provider":"email","audience":"client","inputs":{"email":"a@example.com","email":"b@example.com"}}`, `duplicate field "inputs.email"`},
		{&enrollRequest{}, `{"provider":"email","audience":"client","inputs":{"Email":"a@example.com","email":"b@example.com"}}`, ""},
		{&uiLinkRequest{}, `{"page":"enroll","inputs":{"email":"a@example.com","email":"b@example.com"},"fix_inputs":true}`, `duplicate field "inputs.email"`},
		{&confirmRequest{}, `{"credential":{"id":"a","response":{"clientDataJSON":"x"},"response":{}}}`, `duplicate field "credential.response"`},
		{&verifyRequest{}, `{"provider":"webauthn","credential":[{"a":1},{"a":1,"a":2}]}`, `duplicate field "credential[1].a"`},
		// A nested value of the wrong type is Decode's to refuse; its keys
		// are still checked.
		{&verifyRequest{}, `{"provider":"totp","code":{"a":1,"a":2}}`, `duplicate field "code.a"`},
		{&verifyRequest{}, `{"provider":"totp","code":{"a":1}}`, ""},
	} {
		got := ""
		if err := checkKeys([]byte(c.body), c.v); err != nil {
			got = jsonProblem(err)
		}
		if got != c.want {
			t.Errorf("%T %s: %q, want %q", c.v, c.body, got, c.want)
		}
		if slow := fmt.Sprint(checkKeysSlow([]byte(c.body), c.v)); slow != fmt.Sprint(checkKeys([]byte(c.body), c.v)) {
			t.Errorf("%T %s: checkKeysSlow says %s", c.v, c.body, slow)
		}
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
