package host_test

import (
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// enrollKey begins and confirms a TOTP enrollment with a code of the
// digits the enrollment's key says, and returns the key.
func (h *testHost) enrollKey(user string) *otp.Key {
	h.t.Helper()
	r := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	if r.status != http.StatusCreated {
		h.t.Fatalf("enroll %s: %d %v", user, r.status, r.body)
	}
	key, err := otp.NewKeyFromURL(r.body["display"].(map[string]any)["otpauth_url"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	c := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments/totp/confirm", appKey, map[string]string{"code": h.keyCode(key.Secret(), key.Digits())})
	if c.status != http.StatusOK || c.str("status") != "active" {
		h.t.Fatalf("confirm %s: %d %v", user, c.status, c.body)
	}
	return key
}

// keyCode is the TOTP code of secret, with digits, at the host's time.
func (h *testHost) keyCode(secret string, digits otp.Digits) string {
	h.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, h.clock.Now(), totp.ValidateOpts{Period: 30, Digits: digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// TestSignInCodePerEnrollment: the challenge's code_input for TOTP is the
// length of the user's own enrollment, not the provider's 6-8: a user
// enrolled under digits: 6 is offered exactly 6 digits, one enrolled
// after the setting became 8 exactly 8 (and the first still 6), and an
// imported user (no setup said a length) the provider's range. Each
// signs in with a code of their own length: the field is a hint, the
// provider still checks the code.
func TestSignInCodePerEnrollment(t *testing.T) {
	plugins := pluginCopy(t)
	cfg := writeConfig(t, plugins, totpClients)
	users := writeFile(t, "users.csv", "user,secret,digits\nimported,"+importSecretB+",8\n")
	if code, out, errOut := runImport(t, "--config", cfg, users); code != 0 {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	h := startHostAt(t, plugins, cfg, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	six := h.enrollKey("six")

	text, err := os.ReadFile(h.configPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(text), "settings: {issuer: ACME Billing}", "settings: {issuer: ACME Billing, digits: 8}", 1)
	if next == string(text) {
		t.Fatal("the config has no TOTP settings to change")
	}
	if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if ev := waitReload(t, h.svc); !ev.Applied {
		t.Fatalf("reload to digits: 8 refused: %v", ev.Err)
	}
	eight := h.enrollKey("eight")
	if six.Digits() != otp.DigitsSix || eight.Digits() != otp.DigitsEight {
		t.Fatalf("enrolled with %d and %d digits, want 6 then 8", six.Digits(), eight.Digits())
	}
	h.clock.Add(30 * time.Second) // the confirmation codes are spent

	codeInput := func(lo, hi int) map[string]any {
		return map[string]any{"kind": "digits", "min_length": float64(lo), "max_length": float64(hi)}
	}
	for _, tc := range []struct {
		user   string
		want   map[string]any
		secret string
		digits otp.Digits
	}{
		{"six", codeInput(6, 6), six.Secret(), otp.DigitsSix},
		{"eight", codeInput(8, 8), eight.Secret(), otp.DigitsEight},
		{"imported", codeInput(6, 8), importSecretB, otp.DigitsEight},
	} {
		t.Run(tc.user, func(t *testing.T) {
			r := h.do("POST", "/v1/users/"+tc.user+"/challenge", appKey, map[string]string{"audience": "client"})
			ps, _ := r.body["providers"].([]any)
			if r.status != http.StatusOK || r.str("decision") != "verify" || len(ps) != 1 {
				t.Fatalf("challenge: %d %v", r.status, r.body)
			}
			if got := ps[0].(map[string]any)["code_input"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("code_input %v, want %v", got, tc.want)
			}
			if v := h.verify(tc.user, h.keyCode(tc.secret, tc.digits)); v.status != http.StatusOK || v.str("outcome") != "allow" {
				t.Errorf("verify with a %d-digit code: %d %v", tc.digits, v.status, v.body)
			}
		})
	}
}
