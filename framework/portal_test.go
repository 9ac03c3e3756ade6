package framework

import (
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestEnrollPortalURL(t *testing.T) {
	enroll := func(u string) VerifyResult {
		return VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonEnrollmentRequired, Details: map[string]string{sdk.DetailEnrollPortalURL: u}}
	}
	for _, tc := range []struct {
		name string
		res  VerifyResult
		want string
	}{
		{"https", enroll("https://api-1.duosecurity.com/portal?code=abc"), "https://api-1.duosecurity.com/portal?code=abc"},
		{"http", enroll("http://api-1.duosecurity.com/portal"), ""},
		{"javascript", enroll("javascript:alert(1)"), ""},
		{"user info", enroll("https://u:p@example.com/"), ""},
		{"not canonical", enroll("https://example.com/a b"), ""},
		{"relative", enroll("/portal"), ""},
		{"other reason", VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonDeniedByPolicy,
			Details: map[string]string{sdk.DetailEnrollPortalURL: "https://example.com/"}}, ""},
	} {
		if got := EnrollPortalURL(tc.res); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
