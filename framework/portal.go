package framework

import (
	"net/url"

	"github.com/twofactor/twofactor/sdk"
)

// EnrollPortalURL is the URL a provider gave, with a deny of reason
// sdk.ReasonEnrollmentRequired, where its backend lets the user enroll;
// "" when it gave none or gave something that is not a plain https URL
// (it is shown to users as a link, so nothing else gets through).
func EnrollPortalURL(res VerifyResult) string {
	if res.Reason != sdk.ReasonEnrollmentRequired {
		return ""
	}
	return httpsURL(res.Details[sdk.DetailEnrollPortalURL])
}

// httpsURL returns raw if it is an absolute https URL without user info,
// at most 2048 bytes, else "".
func httpsURL(raw string) string {
	if raw == "" || len(raw) > 2048 {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.String() != raw {
		return ""
	}
	return raw
}
