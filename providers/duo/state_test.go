package duo

import (
	"bytes"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestStateRoundTrip(t *testing.T) {
	for _, s := range []stateV1{
		{Status: statusPending, Username: "alice", UserID: "DU3RP9I2WOC59VZX672N", ActivationCode: "duo://abc-def", Expires: 1700086400},
		{Status: statusPending, Username: "alice", UserID: "DU1", ActivationCode: "x"},
		{Status: statusEnrolled, Username: "bob@example.com"},
		{Status: statusEnrolled, Username: "Zoë", UserID: "DU1"},
		{Status: statusBypass, Username: "carol"},
	} {
		b := s.marshal()
		got, err := parseState(b)
		if err != nil {
			t.Fatalf("parseState(%s): %v", b, err)
		}
		if *got != s {
			t.Errorf("round trip = %+v, want %+v", *got, s)
		}
	}
}

func TestParseStateRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":              ``,
		"not JSON":           `hello`,
		"array":              `[1]`,
		"no version":         `{"status":"enrolled","username":"a"}`,
		"version 2":          `{"v":2,"status":"enrolled","username":"a"}`,
		"unknown field":      `{"v":1,"status":"enrolled","username":"a","skey":"x"}`,
		"trailing data":      `{"v":1,"status":"enrolled","username":"a"} {}`,
		"wrong type":         `{"v":1,"status":"enrolled","username":7}`,
		"unknown status":     `{"v":1,"status":"maybe","username":"a"}`,
		"no username":        `{"v":1,"status":"enrolled"}`,
		"control username":   `{"v":1,"status":"enrolled","username":"a\nb"}`,
		"spaced username":    `{"v":1,"status":"enrolled","username":" a"}`,
		"pending no code":    `{"v":1,"status":"pending","username":"a","user_id":"DU1"}`,
		"pending no user_id": `{"v":1,"status":"pending","username":"a","activation_code":"x"}`,
		"enrolled with code": `{"v":1,"status":"enrolled","username":"a","activation_code":"x"}`,
		"enrolled expires":   `{"v":1,"status":"enrolled","username":"a","expires":5}`,
		"negative expires":   `{"v":1,"status":"pending","username":"a","user_id":"DU1","activation_code":"x","expires":-1}`,
		"bad user_id":        `{"v":1,"status":"enrolled","username":"a","user_id":"DU/1"}`,
		"truncated":          `{"v":1,"status":"enr`,
		"huge":               `{"v":1,"status":"enrolled","username":"` + strings.Repeat("a", maxStateLen) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseState([]byte(in))
			e := wantKind(t, err, sdk.KindInvalidState, "")
			if strings.Contains(e.Message, "duo://") {
				t.Errorf("message quotes the state: %v", e)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"v":1,"status":"pending","username":"alice","user_id":"DU1","activation_code":"duo://x","expires":1}`))
	f.Add([]byte(`{"v":1,"status":"enrolled","username":"bob"}`))
	f.Add([]byte(`{"v":1,"status":"bypass","username":"c","user_id":"DU2"}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseState(b)
		if err != nil {
			if sdk.KindOf(err) != sdk.KindInvalidState {
				t.Fatalf("error of kind %s: %v", sdk.KindOf(err), err)
			}
			return
		}
		// Whatever parses is written back as a state that parses the same.
		again, err := parseState(s.marshal())
		if err != nil || *again != *s {
			t.Fatalf("re-parse = %+v, %v; want %+v", again, err, s)
		}
		if !bytes.Equal(again.marshal(), s.marshal()) {
			t.Fatal("marshal is not stable")
		}
	})
}

func FuzzNormalizePasscode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", " 1 ", "cccccbhuinjdrtbdfkrkctfjvdjhvbvk", "12-34", "١٢٣", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := normalizePasscode(in)
		if !ok {
			return
		}
		if out == "" || len(out) > maxPasscodeLen || strings.ContainsAny(out, " \t\n") {
			t.Fatalf("normalizePasscode(%q) = %q", in, out)
		}
		if again, ok := normalizePasscode(out); !ok || again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
	})
}
