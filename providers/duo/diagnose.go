package duo

// What Duo's refusals mean for the admin: each definite answer about the
// keys, the host name or the clock becomes an sdk error that names the
// setting at fault and says what to change (Fix); an unreachable Duo
// becomes an unhealthy activation, because the failmode still decides.

import (
	"fmt"
	"time"

	"github.com/twofactor/twofactor/providers/duo/internal/authapi"
	"github.com/twofactor/twofactor/sdk"
)

// Fixes, each naming the settings to change. The provider does not know
// where the host keeps its settings, so they are named as the schema
// names them.
const (
	fixIntegrationKey = "copy the Integration key of an Auth API application (" + adminPanelPath + ") into the " +
		settingIntegrationKey + " setting, and check that " + settingAPIHostname + " is the API hostname shown on the same page"
	fixSecretKey = "copy the Secret key of the same Auth API application into the " + settingSecretKey + " setting " +
		"(better from the environment than the config file), and check that " + settingAPIHostname +
		" is exactly the API hostname shown with it"
	fixApplicationType = "create an Auth API application (" + adminPanelPath + ") and copy its Integration key, " +
		"Secret key and API hostname into the " + settingIntegrationKey + ", " + settingSecretKey + " and " +
		settingAPIHostname + " settings: keys of another application type are refused"
	fixHostname = "set " + settingAPIHostname + " to the API hostname shown with the Auth API application's keys " +
		"(api-XXXXXXXX.duosecurity.com): the host configured answers, but not as Duo's Auth API"
	fixBareCredentials = "Duo's answer does not say which value it refused; the format checks passed, so check, in " +
		"this order: 1. " + settingIntegrationKey + " is the Integration key (DI and 18 more characters) of an Auth API " +
		"application; 2. " + settingSecretKey + " is the 40-character Secret key shown with it; 3. " + settingAPIHostname +
		" is the API hostname shown with it (api-XXXXXXXX.duosecurity.com); 4. the application is of type Auth API, " +
		"not Web SDK / Universal Prompt or Admin API (" + adminPanelPath + ")"
	fixClock = "sync this server's clock with NTP (chrony, systemd-timesyncd or ntpd); requests are signed with " +
		"Duo's time as measured, so this means the clock jumps between measurements"
	fixPingRefused = "set " + settingAPIHostname + " to the API hostname shown with the Auth API application's keys " +
		"(api-XXXXXXXX.duosecurity.com), and check that no proxy or firewall between this server and Duo answers in " +
		"its place (ca_file is only for a TLS-inspecting proxy that forwards to Duo)"
	fixUnreachable = "check that this server reaches https://%s (DNS, firewall, outbound proxy, ca_file for a " +
		"TLS-inspecting proxy); activation is retried on its own and verifications follow failmode %s meanwhile"
)

// refusal turns a definite answer of Duo about the credentials, the host
// or the clock into the sdk error for the admin. op is what was called;
// off the clock offset in use.
func (c *config) refusal(op string, err error, off time.Duration) *sdk.Error {
	e, _ := authapi.AsError(err)
	if e == nil {
		return sdk.Errorf(sdk.KindInternal, "duo %s: %v", op, err)
	}
	if op == "ping" {
		// The ping is not signed: it carries neither key nor a date, so
		// whatever refused it (a 401, a 403, a 40102) is not Duo judging
		// the keys, the application type or the clock.
		return sdk.FieldError(sdk.KindInvalidCredentials, settingAPIHostname,
			"the unsigned ping at %s, which carries no credentials, was refused (%s): the host that answers is "+
				"not Duo's Auth API, or something between this server and Duo answers in its place", c.host, describe(e)).
			WithFix(fixPingRefused)
	}
	switch {
	case authapi.Classify(err) == authapi.ClassClock:
		return sdk.Errorf(sdk.KindClockSkew, "Duo rejected the request's time even after measuring Duo's clock "+
			"(this server's clock is %s off Duo's; Duo: %d %s)", formatOffset(off.Abs()), e.Code, e.Message).WithFix(fixClock)
	case e.IsInvalidIntegrationKey():
		return sdk.FieldError(sdk.KindInvalidCredentials, settingIntegrationKey,
			"Duo does not know integration key %s (Duo: %s): check it was copied from an Auth API application "+
				"(%s), and that api_hostname (%s) is that application's", c.ikey, e.Message, adminPanelPath, c.host).
			WithFix(fixIntegrationKey)
	case e.IsForbidden(), e.HTTPStatus == 403 && e.IsBare():
		return sdk.FieldError(sdk.KindInvalidCredentials, settingIntegrationKey,
			"integration key %s belongs to another kind of Duo application (Duo: %s), such as Web SDK / "+
				"Universal Prompt or Admin API; this provider needs the keys of an Auth API application",
			c.ikey, describe(e)).WithFix(fixApplicationType)
	case e.IsInvalidSignature():
		return sdk.FieldError(sdk.KindInvalidCredentials, settingSecretKey,
			"secret key or API hostname is wrong: Duo knows integration key %s but rejected the request's "+
				"signature (Duo: %s); copy the secret key of the same Auth API application, and check that "+
				"api_hostname %s is exactly the one shown with it", c.ikey, e.Message, c.host).WithFix(fixSecretKey)
	case authapi.Classify(err) == authapi.ClassCredentials:
		// A bare 401, a 40101, or a code Duo does not document: the answer
		// does not say which value is wrong.
		return sdk.Errorf(sdk.KindInvalidCredentials,
			"Duo at %s refused the credentials with %s, which does not say which value is wrong (the request was "+
				"re-signed with Duo's time, so it is not the clock); candidates in order: %s, %s, %s, the application type",
			c.host, describe(e), settingIntegrationKey, settingSecretKey, settingAPIHostname).WithFix(fixBareCredentials)
	}
	return sdk.FieldError(sdk.KindInvalidCredentials, settingAPIHostname,
		"%s at %s was answered, but not as Duo's Auth API answers it (%s)", op, c.host, describe(e)).WithFix(fixHostname)
}

// unreachable is the activation of a provider whose Duo cannot be reached:
// unhealthy, but serving, because the failmode decides every verification
// until Duo answers again.
func (c *config) unreachable(err error) sdk.Activation {
	decides := "deny every login (failmode secure)"
	if c.failmode == failmodeSafe {
		decides = "let users in without a second factor (failmode safe)"
	}
	return sdk.Activation{Health: sdk.Unhealthy, Diagnostics: []sdk.Diagnostic{{
		Code:     "duo_unreachable",
		Severity: sdk.SeverityError,
		Value:    c.host,
		Message:  fmt.Sprintf("Duo at %s cannot be reached (%v); until it can, verifications %s", c.host, err, decides),
		Fix:      fmt.Sprintf(fixUnreachable, c.host, c.failmode),
	}}}
}

// describe is a Duo error for a message: "40002 Invalid request parameters
// (username)", or "HTTP 401 with an empty body".
func describe(e *authapi.Error) string {
	if e.Malformed {
		return fmt.Sprintf("HTTP %d, %s", e.HTTPStatus, e.Message)
	}
	s := fmt.Sprintf("%d %s", e.Code, e.Message)
	if e.IsBare() {
		s = fmt.Sprintf("HTTP %d FAIL without a code: %s", e.HTTPStatus, e.Message)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}
