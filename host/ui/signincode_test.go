package ui_test

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// reconfigure replaces old with new in the host's config file and waits
// for the host to apply it.
func (h *testHost) reconfigure(old, new string) {
	h.t.Helper()
	text, err := os.ReadFile(h.configPath)
	if err != nil {
		h.t.Fatal(err)
	}
	next := strings.Replace(string(text), old, new, 1)
	if next == string(text) {
		h.t.Fatalf("the config has no %q", old)
	}
	if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
		h.t.Fatal(err)
	}
	select {
	case ev := <-h.svc.Reloads():
		if !ev.Applied {
			h.t.Fatalf("reload refused: %v", ev.Err)
		}
	case <-time.After(60 * time.Second):
		h.t.Fatal("no reload within 60s of the file change")
	}
}

// enrollTOTPKey enrolls user in TOTP through the API, confirming with a
// code of the digits the enrollment's key has, and returns the key.
func (h *testHost) enrollTOTPKey(user string) *otp.Key {
	h.t.Helper()
	status, out := h.api("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	if status != http.StatusCreated {
		h.t.Fatalf("enroll %s: %d %v", user, status, out)
	}
	key, err := otp.NewKeyFromURL(out["display"].(map[string]any)["otpauth_url"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	code, err := totp.GenerateCodeCustom(key.Secret(), h.clock.Now(), totp.ValidateOpts{Period: 30, Digits: key.Digits(), Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	if status, out = h.api("POST", "/v1/users/"+user+"/enrollments/totp/confirm", appKey, map[string]string{"code": code}); status != http.StatusOK {
		h.t.Fatalf("confirm %s: %d %v", user, status, out)
	}
	return key
}

var codeFieldRE = regexp.MustCompile(`<input id="code" name="code"[^>]*>`)

// attr is the value of an HTML attribute in tag ("" when absent).
func attr(tag, name string) string {
	m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestSignInFieldPerEnrollment: the sign-in page's code field takes the
// length of the user's own enrollment: 6 digits for a user enrolled under
// digits: 6, 8 for one enrolled after the setting became 8 (the first
// still 6), never the provider's 6-8 for either.
func TestSignInFieldPerEnrollment(t *testing.T) {
	h := startHost(t, start, totpClients)
	h.enrollTOTPKey("six")
	h.reconfigure("{issuer: ACME Hosting}", "{issuer: ACME Hosting, digits: 8}")
	if k := h.enrollTOTPKey("eight"); k.Digits() != otp.DigitsEight {
		t.Fatalf("enrolled after digits: 8 with %d digits", k.Digits())
	}
	for _, tc := range []struct {
		user, maxLength, pattern string
	}{
		{"six", "9", "( *[0-9]){6,6} *"},
		{"eight", "12", "( *[0-9]){8,8} *"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			p := h.get(h.link(tc.user, map[string]string{"page": "verify", "audience": "client", "provider": "totp"}), false)
			field := codeFieldRE.FindString(p.body)
			if p.status != http.StatusOK || field == "" {
				t.Fatalf("verify page: %d, no code field:\n%s", p.status, p.body)
			}
			for name, want := range map[string]string{"maxlength": tc.maxLength, "pattern": tc.pattern, "inputmode": "numeric"} {
				if got := attr(field, name); got != want {
					t.Errorf("%s = %q, want %q, in %s", name, got, want, field)
				}
			}
		})
	}
}
