package totp

import (
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/sdk"
)

// The stored format is a compatibility promise: states written today must
// parse in every later release.
func TestStateFormat(t *testing.T) {
	st := stateFor(t, []byte(rfcSeedSHA1), "SHA1", 6, 30, 56666666)
	const want = `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":56666666}`
	if string(st) != want {
		t.Errorf("state = %s\nwant    %s", st, want)
	}
	e, err := parseState([]byte(" {\n\"last_step\": 0, \"period\": 60, \"digits\": 8, \"algorithm\": \"SHA512\", " +
		"\"secret\": \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA\", \"v\": 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(e.secret) != rfcSeedSHA256 || e.algName != "SHA512" || e.digits != 8 || e.period != 60 || e.lastStep != 0 {
		t.Errorf("parsed %+v", e)
	}
}

// garbageStates are states Verify and Enroll must refuse with
// KindInvalidState. They are also fuzz seeds.
var garbageStates = []struct{ name, state string }{
	{"empty", ""},
	{"not json", "hello"},
	{"null", "null"},
	{"array", "[]"},
	{"number", "1"},
	{"empty object", "{}"},
	{"no version", `{"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"version 0", `{"v":0,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"version 2", `{"v":2,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0,"new":1}`},
	{"version string", `{"v":"1","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"unknown field", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0,"skew":5}`},
	{"trailing data", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}{}`},
	{"truncated", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,`},
	{"empty secret", `{"v":1,"secret":"","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"no secret", `{"v":1,"algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"short secret", `{"v":1,"secret":"GEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"long secret", `{"v":1,"secret":"` + strings.Repeat("GEZDGNBV", 14) + `","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"bad base32", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"lower-case secret", `{"v":1,"secret":"gezdgnbvgy3tqojqgezdgnbvgy3tqojq","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"padded secret", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA====","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"secret with newline", `{"v":1,"secret":"GEZDGNBVGY3TQOJQ\nGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"secret trailing bits", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZB","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`},
	{"digits 7", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":7,"period":30,"last_step":0}`},
	{"digits -1", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":-1,"period":30,"last_step":0}`},
	{"digits 0", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":0,"period":30,"last_step":0}`},
	{"digits 6.0", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6.0,"period":30,"last_step":0}`},
	{"period 0", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":0,"last_step":0}`},
	{"period -30", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":-30,"last_step":0}`},
	{"period 1000", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":1000,"last_step":0}`},
	{"algorithm MD5", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"MD5","digits":6,"period":30,"last_step":0}`},
	{"algorithm lower", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"sha1","digits":6,"period":30,"last_step":0}`},
	{"algorithm empty", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"","digits":6,"period":30,"last_step":0}`},
	{"last_step negative", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":-1}`},
	{"last_step huge", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":18446744073709551615}`},
	{"oversized", `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}` + strings.Repeat(" ", maxStateLen)},
}

func TestGarbageState(t *testing.T) {
	p := configured(t, nil)
	now := time.Unix(59, 0)
	for _, tc := range garbageStates {
		t.Run(tc.name, func(t *testing.T) {
			// 287082 is the right code for the RFC seed at 59 s, so only
			// the state can be at fault.
			r, err := p.Verify(ctx, sdk.VerifyRequest{State: []byte(tc.state), Code: "287082", Now: now})
			wantKind(t, err, sdk.KindInvalidState, "")
			if r.Outcome == sdk.Allow || r.State != nil {
				t.Errorf("Verify returned %+v with the error", r)
			}
			if strings.Contains(err.Error(), "GEZDGNBV") {
				t.Errorf("error quotes the secret: %v", err)
			}
			_, err = p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollFinish, State: []byte(tc.state), Code: "287082", Now: now})
			wantKind(t, err, sdk.KindInvalidState, "")
		})
	}
	// The same state with a good secret is accepted, so the cases above
	// fail for the reason in their name.
	good := `{"v":1,"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algorithm":"SHA1","digits":6,"period":30,"last_step":0}`
	r, err := p.Verify(ctx, sdk.VerifyRequest{State: []byte(good), Code: "287082", Now: now})
	if err != nil || r.Outcome != sdk.Allow {
		t.Errorf("good state: %+v, %v", r, err)
	}
}
