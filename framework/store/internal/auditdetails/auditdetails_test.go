package auditdetails

import (
	"testing"

	"github.com/twofactor/twofactor/framework"
)

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		details map[string]string
		want    string
	}{
		{"none", nil, `{}`},
		{"empty", map[string]string{}, `{}`},
		{"sorted keys", map[string]string{"b": "2", "a": "1"}, `{"a":"1","b":"2"}`},
		{"escaped", map[string]string{"k": "\"<x>\""}, `{"k":"\"\u003cx\u003e\""}`},
	} {
		got, err := Encode(tc.details)
		if err != nil || got != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

// TestWithRecoveryLeft: the count joins the details, 0 included, and the
// caller's map is left as it was.
func TestWithRecoveryLeft(t *testing.T) {
	details := map[string]string{"other": "kept"}
	for _, tc := range []struct {
		details map[string]string
		left    int
		want    string
	}{
		{details, 3, `{"other":"kept","recovery_codes_left":"3"}`},
		{nil, 0, `{"recovery_codes_left":"0"}`},
	} {
		got, err := WithRecoveryLeft(tc.details, tc.left)
		if err != nil || got != tc.want {
			t.Errorf("WithRecoveryLeft(%v, %d) = %s, %v; want %s", tc.details, tc.left, got, err, tc.want)
		}
	}
	if _, ok := details[framework.DetailRecoveryCodesLeft]; ok || len(details) != 1 {
		t.Errorf("the caller's details changed: %v", details)
	}
}
