package apifuzz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
)

// The API's JSON request bodies. Every target checks the same things:
// no panic, never a 5xx, a 4xx carries an error code, the provider is
// never reached by a request the host itself must refuse (malformed JSON,
// an oversized body, an unknown provider or audience, a bad user id), and
// nothing is allowed or activated that should not be.

// FuzzVerifyRequestBody throws arbitrary bodies at the verify route. $CODE
// in an input is alice's valid code.
func FuzzVerifyRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"provider":"totp","audience":"client","code":"123456"}`,
		`{"provider":"totp","audience":"client","code":"$CODE"}`,
		`{"provider":"totp","audience":"client","code":"$CODE","remember_device":true,"device_label":"Firefox"}`,
		`{"provider":"totp","audience":"client","code":"$CODE","device_token":"$DEVICE"}`,
		`{"provider":"totp","audience":"client","code":"123456","remember_device":"yes","device_label":"\u0007"}`,
		`{"provider":"totp","audience":"client","code":" 123 456 ","client_ip":"192.0.2.1"}`,
		`{"provider":"totp","audience":"staff","code":"123456","factor":"push"}`,
		`{"provider":"totp","audience":"client","code":"١٢٣٤٥٦"}`,
		`{"provider":"totp","audience":"client","code":123456}`,
		`{"provider":"totp","audience":"client","code":"1","code":"$CODE"}`,
		`{"provider":"recovery","audience":"client","code":"abcd-efgh"}`,
		`{"provider":"totp"}{"provider":"totp"}`,
		`{"provider":"totp","audience":"client","code":"123456","extra":1}`,
		`[1,2,3]`, `null`, `"x"`, ``, `{`, `{"code":"\u0000"}`,
	} {
		f.Add(seed)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, body string) {
		body = h.expand(body)
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, "/v1/users/alice/verify", appKey, "", body)
		called := h.prov.calls.Load() - before
		out := checkAPI(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
			http.StatusRequestEntityTooLarge, http.StatusTooManyRequests)
		var in struct {
			Provider, Audience, Code string
		}
		sane := strictBody(body, &in)
		if called > 0 && (rec.Code != http.StatusOK || !sane || in.Provider != "totp" || in.Audience != "client" || len(in.Code) > 64) {
			t.Fatalf("the provider was called for %q: %d %s", body, rec.Code, rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			return
		}
		switch out.Outcome {
		case "allow":
			valid := h.code(h.aliceSecret)
			if in.Provider == framework.RecoveryProvider {
				t.Fatalf("allow for recovery code %q, which the fuzzer cannot know", in.Code)
			}
			if called == 0 || strings.ReplaceAll(in.Code, " ", "") != valid {
				t.Fatalf("allow for code %q (valid is %q)", in.Code, valid)
			}
		case "deny":
		default:
			t.Fatalf("200 with outcome %q", out.Outcome)
		}
	})
}

// FuzzEnrollRequestBody throws arbitrary user ids and bodies at
// POST /v1/users/{user}/enrollments. Only TOTP for clients exists; alice
// has it active already.
func FuzzEnrollRequestBody(f *testing.F) {
	for _, seed := range []struct{ user, body string }{
		{"bob", `{"provider":"totp","audience":"client"}`},
		{"bob", `{"provider":"totp","audience":"client","account_name":"bob@example.com"}`},
		{"bob", `{"provider":"totp","audience":"client","account_name":"evil:issuer"}`},
		{"bob", `{"provider":"totp","audience":"client","account_name":"tab\there"}`},
		{"bob:colon", `{"provider":"totp","audience":"client"}`},
		{"alice", `{"provider":"totp","audience":"client"}`},
		{"bob", `{"provider":"totp","audience":"staff"}`},
		{"bob", `{"provider":"sms","audience":"client"}`},
		{"bob", `{"provider":"totp","audience":"root"}`},
		{"bob", `{"provider":"recovery","audience":"client"}`},
		{"bob", `{"provider":"totp","audience":"client","provider":"sms"}`},
		{"bob", `{"provider":"totp","audience":"client","Provider":"sms"}`},
		{"bob", `{"provider":1,"audience":"client"}`},
		{"bob", `{"provider":"totp","audience":"client","account_name":null}`},
		{"bob", `{"provider":"totp","audience":"client"} {}`},
		{"b\x00b", `{"provider":"totp","audience":"client"}`},
		{"bob\r\nX-Injected: 1", `{"provider":"totp","audience":"client"}`},
		{strings.Repeat("b", 129), `{"provider":"totp","audience":"client"}`},
		{"bob", `[]`}, {"bob", ``}, {"bob", `{`},
	} {
		f.Add(seed.user, seed.body)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, user, body string) {
		segment, user := userPath(user)
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, "/v1/users/"+segment+"/enrollments", appKey, "", body)
		called := h.prov.calls.Load() - before
		checkAPI(t, rec, http.StatusCreated, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
			http.StatusConflict, http.StatusRequestEntityTooLarge)
		var in struct{ Provider, Audience, AccountName string }
		sane := strictBody(body, &in) && in.Provider == "totp" && in.Audience == "client" && framework.ValidateUserID(user) == nil
		if called > 0 && !sane {
			t.Fatalf("the provider was called for user %q, body %q: %d %s", user, body, rec.Code, rec.Body.String())
		}
		// The provider refuses an account name it cannot put in a label
		// (400 invalid_request); every other 4xx is the host's own.
		if called > 0 && rec.Code/100 == 4 && !strings.Contains(rec.Body.String(), `"invalid_request"`) {
			t.Fatalf("%d after a provider call: %s", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusCreated {
			var out struct {
				Status  string
				Display struct {
					OTPAuthURL string `json:"otpauth_url"`
				}
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			if !sane || called == 0 || out.Status != "pending" || user == "alice" {
				t.Fatalf("201 for user %q, body %q: %s", user, body, rec.Body.String())
			}
			if _, err := otp.NewKeyFromURL(out.Display.OTPAuthURL); err != nil {
				t.Fatalf("201 without a usable otpauth URL: %s", rec.Body.String())
			}
		}
	})
}

// FuzzConfirmRequestBody throws arbitrary provider names (in the path)
// and bodies at POST /v1/users/carol/enrollments/{provider}/confirm, where
// carol has a pending TOTP enrollment. $CODE in an input is carol's valid
// code; when it confirms, carol is reset and begins again.
func FuzzConfirmRequestBody(f *testing.F) {
	for _, seed := range []struct{ provider, body string }{
		{"totp", `{"code":"$CODE"}`},
		{"totp", `{"code":" $CODE "}`},
		{"totp", `{"code":"123456"}`},
		{"totp", `{"code":"١٢٣٤٥٦"}`},
		{"totp", `{"code":"` + strings.Repeat("1", 65) + `"}`},
		{"totp", `{"code":"$CODE` + strings.Repeat(" ", 100) + `"}`},
		{"totp", `{"code":123456}`},
		{"totp", `{"code":"1","code":"$CODE"}`},
		{"totp", `{"Code":"$CODE"}`},
		{"totp", `{"code":"$CODE","provider":"totp"}`},
		{"totp", `{}`}, {"totp", ``}, {"totp", `null`}, {"totp", `{"code":"$CODE"}x`},
		{"sms", `{"code":"$CODE"}`},
		{"TOTP", `{"code":"$CODE"}`},
		{"recovery", `{"code":"$CODE"}`},
		{"tot\x00p", `{"code":"$CODE"}`},
	} {
		f.Add(seed.provider, seed.body)
	}
	h := newHarness(f)
	ctx := context.Background()
	var secret string
	begin := func() {
		res, err := h.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "carol", Provider: "totp", Audience: framework.AudienceClient})
		if err != nil {
			f.Fatal(err)
		}
		key, err := otp.NewKeyFromURL(res.Display.OTPAuthURL)
		if err != nil {
			f.Fatal(err)
		}
		secret = key.Secret()
	}
	begin()
	f.Fuzz(func(t *testing.T, provider, body string) {
		valid, _ := totp.GenerateCode(secret, h.now())
		body = strings.ReplaceAll(body, "$CODE", valid)
		segment, _ := userPath(provider)
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, "/v1/users/carol/enrollments/"+segment+"/confirm", appKey, "", body)
		called := h.prov.calls.Load() - before
		out := checkAPI(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		var in struct{ Code string }
		sane := strictBody(body, &in) && provider == "totp" && len(in.Code) <= 64
		if called > 0 && !sane {
			t.Fatalf("the provider was called for %q, body %q: %d %s", provider, body, rec.Code, rec.Body.String())
		}
		// 422 is the provider's refusal of the code; every other 4xx is
		// the host's own.
		if (called > 0) != (rec.Code == http.StatusOK || rec.Code == http.StatusUnprocessableEntity) {
			t.Fatalf("%d with %d provider calls, for %q, body %q: %s", rec.Code, called, provider, body, rec.Body.String())
		}
		if rec.Code == http.StatusOK {
			if out.Status != "active" || strings.ReplaceAll(in.Code, " ", "") != valid {
				t.Fatalf("confirmed with code %q (valid is %q): %s", in.Code, valid, rec.Body.String())
			}
			if err := h.fw.ResetEnrollment(ctx, "carol", "totp"); err != nil {
				t.Fatal(err)
			}
			begin()
		}
	})
}

// FuzzChallengeRequestBody throws arbitrary user ids and bodies at
// POST /v1/users/{user}/challenge. Clients must have a factor (alice has
// one, and a remembered device: $DEVICE); staff need none. A challenge
// never calls a provider, and allows only what the policy allows.
func FuzzChallengeRequestBody(f *testing.F) {
	for _, seed := range []struct{ user, body string }{
		{"alice", `{"audience":"client"}`},
		{"alice", `{"audience":"client","device_token":"$DEVICE"}`},
		{"alice", `{"audience":"client","device_token":"$DEVICE","client_ip":"2001:db8::1"}`},
		{"alice", `{"audience":"client","device_token":"$DEVICEx"}`},
		{"alice", `{"audience":"client","device_token":"x$DEVICE"}`},
		{"alice", `{"audience":"client","device_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`},
		{"alice", `{"audience":"staff","device_token":"$DEVICE"}`},
		{"bob", `{"audience":"client","device_token":"$DEVICE"}`},
		{"bob", `{"audience":"staff"}`},
		{"alice", `{"audience":"root"}`},
		{"alice", `{"audience":"CLIENT"}`},
		{"alice", `{}`},
		{"alice", `{"audience":"client","client_ip":"1.2.3.4\r\nX: y"}`},
		{"alice", `{"audience":"client","device_token":` + `"` + strings.Repeat("A", 200) + `"}`},
		{"alice", `{"audience":"client","audience":"staff"}`},
		{"alice", `{"audience":1}`},
		{"alice", `{"audience":"client","provider":"totp"}`},
		{"ali\x00ce", `{"audience":"client"}`},
		{"alice\r\n", `{"audience":"client"}`},
		{"alice", ``}, {"alice", `[`}, {"alice", `{"audience":"client"}{}`},
	} {
		f.Add(seed.user, seed.body)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, user, body string) {
		body = h.expand(body)
		segment, user := userPath(user)
		before := h.prov.calls.Load()
		rec := h.do(http.MethodPost, "/v1/users/"+segment+"/challenge", appKey, "", body)
		if n := h.prov.calls.Load() - before; n != 0 {
			t.Fatalf("a challenge called the provider %d times", n)
		}
		out := checkAPI(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		if rec.Code != http.StatusOK {
			return
		}
		var in struct {
			Audience    string
			DeviceToken string `json:"device_token"`
		}
		if !strictBody(body, &in) {
			t.Fatalf("200 for a body that is not one JSON object: %q", body)
		}
		switch {
		case out.Decision == "allow" && out.Why == "remembered_device":
			if user != "alice" || in.Audience != "client" || in.DeviceToken != h.deviceToken {
				t.Fatalf("remembered device for user %q, body %q", user, body)
			}
		case out.Decision == "allow" && out.Why == "not_required":
			if in.Audience != "staff" || user == "alice" {
				t.Fatalf("no factor required of user %q, body %q", user, body)
			}
		case out.Decision == "deny" && out.Why == "provider_unavailable":
			// alice's factor is not enabled for staff: she still has one.
			if user != "alice" || in.Audience != "staff" {
				t.Fatalf("provider_unavailable for user %q, body %q", user, body)
			}
		case out.Decision == "verify":
			if user != "alice" || in.Audience != "client" {
				t.Fatalf("verify for user %q, body %q", user, body)
			}
		case out.Decision == "enroll":
			if user == "alice" || in.Audience != "client" {
				t.Fatalf("enroll for user %q, body %q", user, body)
			}
		default:
			t.Fatalf("decision %q (%s) for user %q, body %q", out.Decision, out.Why, user, body)
		}
	})
}
