package host_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// totpBoth enables TOTP for both audiences; a policy block follows.
const totpBoth = `providers:
  totp:
    enabled: true
    staff: true
    clients: true
    settings: {issuer: ACME Billing}
`

func (h *testHost) challenge(user string, body map[string]string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+url.PathEscape(user)+"/challenge", appKey, body)
}

// wantDecision checks a challenge's decision and why.
func wantDecision(t *testing.T, r response, decision, why string) {
	t.Helper()
	if r.status != http.StatusOK || r.str("decision") != decision || r.str("why") != why {
		t.Fatalf("challenge = %d %v, want %s/%s", r.status, r.body, decision, why)
	}
}

// providersOf renders a challenge's provider list as "name:factor+factor,...".
func providersOf(r response) string {
	var out []string
	list, _ := r.body["providers"].([]any)
	for _, p := range list {
		m := p.(map[string]any)
		var fs []string
		for _, f := range m["factors"].([]any) {
			fs = append(fs, f.(string))
		}
		out = append(out, str(m["name"])+":"+strings.Join(fs, "+"))
	}
	return strings.Join(out, ",")
}

// enrollAs begins and confirms a TOTP enrollment for an audience.
func (h *testHost) enrollAs(user, audience string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": audience})
	if r.status != http.StatusCreated {
		h.t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	secret := otpSecret(h.t, r)
	c := h.do("POST", "/v1/users/"+url.PathEscape(user)+"/enrollments/totp/confirm", appKey, map[string]string{"code": h.code(secret)})
	if c.status != http.StatusOK {
		h.t.Fatalf("confirm: %d %v", c.status, c.body)
	}
	return secret
}

// challengeAudit returns the user's challenge entries as "decision/why".
func (h *testHost) challengeAudit(user string) []string {
	h.t.Helper()
	var out []string
	for _, e := range h.do("GET", "/v1/audit?user="+user, adminKey, nil).body["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] == "challenge" {
			out = append(out, str(m["outcome"])+"/"+str(m["reason"]))
		}
	}
	return out
}

// TestChallengeGraceLogins (acceptance 1): staff with require and no
// factor must enroll; with grace_logins: 2 they get two grace logins
// first, counted in the store. Clients, not required, are let in.
func TestChallengeGraceLogins(t *testing.T) {
	t.Run("no grace", func(t *testing.T) {
		h := startHost(t, totpBoth+"policy: {staff: {require: true}}\n")
		r := h.challenge("alice", map[string]string{"audience": "staff"})
		wantDecision(t, r, "enroll", "enrollment_required")
		if got := providersOf(r); got != "totp:code" {
			t.Errorf("enroll providers = %q", got)
		}
		wantDecision(t, h.challenge("alice", map[string]string{"audience": "client"}), "allow", "not_required")
	})
	t.Run("grace_logins 2", func(t *testing.T) {
		h := startHost(t, totpBoth+"policy: {staff: {require: true, grace_logins: 2}}\n")
		for left := 1.0; left >= 0; left-- {
			r := h.challenge("alice", map[string]string{"audience": "staff"})
			wantDecision(t, r, "allow", "grace_login")
			if r.body["grace_logins_left"] != left {
				t.Errorf("grace_logins_left = %v, want %v", r.body["grace_logins_left"], left)
			}
			// What the user could set up now, to offer it.
			if got := providersOf(r); got != "totp:code" {
				t.Errorf("grace login providers = %q", got)
			}
		}
		for range 2 {
			wantDecision(t, h.challenge("alice", map[string]string{"audience": "staff"}), "enroll", "enrollment_required")
		}
		// Counted per user.
		wantDecision(t, h.challenge("bob", map[string]string{"audience": "staff"}), "allow", "grace_login")
		// Enrolled, alice verifies.
		h.enrollAs("alice", "staff")
		r := h.challenge("alice", map[string]string{"audience": "staff"})
		wantDecision(t, r, "verify", "enrolled")
		if r.body["recovery_available"] != true {
			t.Errorf("recovery_available = %v", r.body["recovery_available"])
		}
		if d, ok := r.body["remember_device_days"]; !ok || d != 0.0 {
			t.Errorf("remember_device_days = %v (present %v), want 0: the policy does not remember devices", d, ok)
		}
		want := []string{"allow/grace_login", "allow/grace_login", "enroll/enrollment_required", "enroll/enrollment_required", "verify/enrolled"}
		if got := h.challengeAudit("alice"); !slices.Equal(got, want) {
			t.Errorf("audited challenges = %v, want %v", got, want)
		}
	})
}

// policyDuoHost runs TOTP (both audiences) and Duo (both audiences, against
// the emulator) with a policy block.
func policyDuoHost(t *testing.T, emu *duotest.Server, policy string) *testHost {
	t.Helper()
	return startHost(t, totpBoth+duoSettings(t, emu, duoconfig.Options{Clients: true})+policy)
}

// TestChallengeListsAllowedProviders (acceptance 2): verify lists exactly
// the providers the user has active and the audience allows, with their
// factors; a provider the audience's policy leaves out does not appear and
// cannot be used.
func TestChallengeListsAllowedProviders(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("dave")
	emu.AddUser("erin")
	h := policyDuoHost(t, emu, "policy: {staff: {require: true, allowed_providers: [totp]}}\n")

	// dave: TOTP and Duo (enrolled as a client: Duo is not allowed for staff).
	h.enrollAs("dave", "staff")
	h.enrollDuo(emu, "dave", "client")
	r := h.challenge("dave", map[string]string{"audience": "client"})
	wantDecision(t, r, "verify", "enrolled")
	if got := providersOf(r); got != "duo:push+passcode+sms,totp:code" {
		t.Errorf("client providers = %q", got)
	}
	r = h.challenge("dave", map[string]string{"audience": "staff"})
	wantDecision(t, r, "verify", "enrolled")
	if got := providersOf(r); got != "totp:code" {
		t.Errorf("staff providers = %q, want only totp", got)
	}
	// The policy holds at verify and enroll too, not only in the listing.
	emu.AddPasscode("dave", "314159")
	if v := h.do("POST", "/v1/users/dave/verify", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "passcode", "code": "314159"}); v.status != http.StatusForbidden || v.errCode() != "audience_not_allowed" {
		t.Errorf("duo verify for staff: %d %v", v.status, v.body)
	}
	if e := h.do("POST", "/v1/users/erin/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); e.status != http.StatusForbidden {
		t.Errorf("duo enroll for staff: %d %v", e.status, e.body)
	}

	// erin: Duo only, which staff may not use. She has a factor, so she
	// is never let in without one, nor offered to enroll in another (that
	// would hand whoever has her password a factor of their own): deny.
	h.enrollDuo(emu, "erin", "client")
	r = h.challenge("erin", map[string]string{"audience": "staff"})
	wantDecision(t, r, "deny", "provider_unavailable")
	wantDecision(t, h.challenge("erin", map[string]string{"audience": "client"}), "verify", "enrolled")
}

// TestRememberedDevice (acceptance 3): a verify with remember_device
// returns a token; with it the next challenge is allow/remembered_device,
// but not after revocation, after expiry, for another user or audience, or
// after an admin reset. Only the token's hash is in the database.
func TestRememberedDevice(t *testing.T) {
	h := startHost(t, totpBoth+`policy:
  clients: {remember_device: {enabled: true, days: 30}}
  staff: {remember_device: {enabled: true, days: 30}}
`)
	secret := h.enrollAs("alice", "client")
	bobSecret := h.enrollAs("bob", "client")
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	remember := func(user, secret string) string {
		t.Helper()
		h.clock.Add(30 * time.Second)
		v := h.do("POST", "/v1/users/"+user+"/verify", appKey, map[string]any{"provider": "totp", "audience": "client",
			"code": h.code(secret), "remember_device": true, "device_label": ua})
		tok := v.str("device_token")
		if v.str("outcome") != "allow" || len(tok) != 43 {
			t.Fatalf("verify with remember_device: %d %v", v.status, v.body)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
			t.Fatalf("token %q is not 32 bytes of base64url", tok)
		}
		return tok
	}
	withToken := func(user, audience, tok string) response {
		return h.challenge(user, map[string]string{"audience": audience, "device_token": tok})
	}

	// The login form learns it may offer "remember this device", and for how long.
	if r := h.challenge("alice", map[string]string{"audience": "client"}); r.body["remember_device_days"] != 30.0 {
		t.Errorf("remember_device_days = %v, want 30", r.body["remember_device_days"])
	}
	tok := remember("alice", secret)
	wantDecision(t, withToken("alice", "client", tok), "allow", "remembered_device")
	wantDecision(t, withToken("alice", "client", tok), "allow", "remembered_device") // not single-use
	wantDecision(t, h.challenge("alice", map[string]string{"audience": "client"}), "verify", "enrolled")
	wantDecision(t, withToken("bob", "client", tok), "verify", "enrolled")  // another user
	wantDecision(t, withToken("alice", "staff", tok), "verify", "enrolled") // another audience
	other := "A" + tok[1:]
	if tok[0] == 'A' {
		other = "B" + tok[1:]
	}
	wantDecision(t, withToken("alice", "client", other), "verify", "enrolled") // not the token
	if r := h.doRaw("POST", "/v1/users/alice/challenge", appKey, map[string]string{"audience": "client", "device_token": strings.Repeat("A", 200)}); r.status != http.StatusBadRequest {
		t.Errorf("an oversized token: %d %v", r.status, r.body)
	}

	// No token without asking, for a wrong code, or with a bad label.
	h.clock.Add(30 * time.Second)
	if v := h.verify("bob", h.code(bobSecret)); v.str("outcome") != "allow" || v.body["device_token"] != nil {
		t.Errorf("a token without remember_device: %v", v.body)
	}
	h.clock.Add(30 * time.Second)
	if v := h.do("POST", "/v1/users/bob/verify", appKey, map[string]any{"provider": "totp", "audience": "client", "code": "000000", "remember_device": true}); v.body["device_token"] != nil {
		t.Errorf("a token for a wrong code: %v", v.body)
	}
	if v := h.doRaw("POST", "/v1/users/bob/verify", appKey, map[string]any{"provider": "totp", "audience": "client",
		"code": h.code(bobSecret), "remember_device": true, "device_label": strings.Repeat("x", 201)}); v.status != http.StatusBadRequest {
		t.Errorf("a 201-character label: %d %v", v.status, v.body)
	}

	// Listing: id, label, dates; never the token or its hash.
	l := h.do("GET", "/v1/users/alice/devices", appKey, nil)
	devices, _ := l.body["devices"].([]any)
	if l.status != http.StatusOK || len(devices) != 1 {
		t.Fatalf("devices: %d %v", l.status, l.body)
	}
	d := devices[0].(map[string]any)
	var keys []string
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"audience", "created_at", "expires_at", "id", "label"}) || d["label"] != ua || d["audience"] != "client" {
		t.Errorf("device entry = %v", d)
	}
	created, _ := time.Parse(time.RFC3339, str(d["created_at"]))
	expires, _ := time.Parse(time.RFC3339, str(d["expires_at"]))
	if expires.Sub(created) != 30*24*time.Hour {
		t.Errorf("device lives %v, want 30 days", expires.Sub(created))
	}
	hash := sha256.Sum256(mustDecode(t, tok))
	if strings.Contains(toJSON(l.body), tok) || strings.Contains(toJSON(l.body), fmt.Sprintf("%x", hash)) {
		t.Error("the listing shows the token or its hash")
	}

	// The database holds the hash, never the token.
	dir := filepath.Dir(h.svc.Config.StorageDSN)
	var all []byte
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		all = append(all, b...)
	}
	if bytes.Contains(all, []byte(tok)) || bytes.Contains(all, mustDecode(t, tok)) {
		t.Error("the database contains the device token")
	}
	if !bytes.Contains(all, hash[:]) {
		t.Error("the database does not contain the token's hash: where is it kept?")
	}

	// Revoked: verify again. Someone else's device id is not found.
	if r := h.do("DELETE", "/v1/users/bob/devices/"+str(d["id"]), appKey, nil); r.status != http.StatusNotFound {
		t.Errorf("bob revoked alice's device: %d %v", r.status, r.body)
	}
	if r := h.do("DELETE", "/v1/users/alice/devices/"+str(d["id"]), appKey, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	wantDecision(t, withToken("alice", "client", tok), "verify", "enrolled")
	if r := h.do("DELETE", "/v1/users/alice/devices/"+str(d["id"]), appKey, nil); r.status != http.StatusNotFound {
		t.Errorf("revoked twice: %d %v", r.status, r.body)
	}

	// Expired (injected clock): verify again, and gone from the list.
	tok = remember("alice", secret)
	h.clock.Add(30*24*time.Hour - time.Minute)
	wantDecision(t, withToken("alice", "client", tok), "allow", "remembered_device")
	h.clock.Add(time.Minute)
	wantDecision(t, withToken("alice", "client", tok), "verify", "enrolled")
	if l := h.do("GET", "/v1/users/alice/devices", appKey, nil); len(l.body["devices"].([]any)) != 0 {
		t.Errorf("expired device listed: %v", l.body)
	}

	// Admin reset: every device revoked, even after enrolling again.
	tok = remember("alice", secret)
	tok2 := remember("alice", secret)
	if r := h.do("DELETE", "/v1/users/alice/enrollments/totp", adminKey, nil); r.status != http.StatusNoContent {
		t.Fatalf("reset: %d %v", r.status, r.body)
	}
	if l := h.do("GET", "/v1/users/alice/devices", appKey, nil); len(l.body["devices"].([]any)) != 0 {
		t.Errorf("devices after reset: %v", l.body)
	}
	h.clock.Add(30 * time.Second)
	h.enrollAs("alice", "client")
	wantDecision(t, withToken("alice", "client", tok), "verify", "enrolled")
	wantDecision(t, withToken("alice", "client", tok2), "verify", "enrolled")

	// Revoke all ("log out everywhere").
	h.rememberDevice(t, "bob", bobSecret)
	if r := h.do("DELETE", "/v1/users/bob/devices", appKey, nil); r.status != http.StatusOK || r.body["revoked"] != 1.0 {
		t.Errorf("revoke all: %d %v", r.status, r.body)
	}

	audit := toJSON(h.do("GET", "/v1/audit?user=alice", adminKey, nil).body)
	for _, want := range []string{`"event":"device.remember"`, `"event":"device.revoke"`, `"reason":"remembered_device"`, `"device_token":"other_audience"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	if strings.Contains(audit, tok) {
		t.Error("the audit log contains a device token")
	}
}

// rememberDevice asks for a device token for user and returns it.
func (h *testHost) rememberDevice(t *testing.T, user, secret string) string {
	t.Helper()
	h.clock.Add(30 * time.Second)
	v := h.do("POST", "/v1/users/"+user+"/verify", appKey, map[string]any{"provider": "totp", "audience": "client",
		"code": h.code(secret), "remember_device": true})
	if v.str("device_token") == "" {
		t.Fatalf("no device token: %d %v", v.status, v.body)
	}
	return v.str("device_token")
}

func mustDecode(t *testing.T, tok string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRememberDeviceNeedsPolicy: no token where the audience's policy does
// not remember devices, and a token stops working when the policy is
// turned off.
func TestRememberDeviceNeedsPolicy(t *testing.T) {
	h := startHost(t, totpBoth)
	secret := h.enrollAs("alice", "client")
	h.clock.Add(30 * time.Second)
	v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]any{"provider": "totp", "audience": "client", "code": h.code(secret), "remember_device": true})
	if v.str("outcome") != "allow" || v.body["device_token"] != nil {
		t.Errorf("remember_device with the policy off: %v", v.body)
	}
}

// TestRememberDeviceDuoPush: a push approved and polled with
// ?remember_device=true earns a token; a Duo bypass, which is no second
// factor, does not.
func TestRememberDeviceDuoPush(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("dave")
	h := policyDuoHost(t, emu, "policy: {staff: {remember_device: {enabled: true, days: 7}}}\n")
	h.enrollDuo(emu, "dave", "staff")
	emu.ScriptPush("dave", duotest.Push{Result: "allow"})
	v := h.duoVerify("dave", map[string]string{"factor": "push"})
	if v.str("outcome") != "pending" {
		t.Fatalf("push: %d %v", v.status, v.body)
	}
	if bad := h.doRaw("GET", "/v1/users/dave/verifications/"+v.str("txid")+"?remember_device=perhaps", appKey, nil); bad.status != http.StatusBadRequest {
		t.Errorf("a bad remember_device: %d %v", bad.status, bad.body)
	}
	p := h.do("GET", "/v1/users/dave/verifications/"+v.str("txid")+"?remember_device=true&device_label=Duo+test", appKey, nil)
	if p.str("outcome") != "allow" || p.str("device_token") == "" {
		t.Fatalf("poll with remember_device: %d %v", p.status, p.body)
	}
	wantDecision(t, h.challenge("dave", map[string]string{"audience": "staff", "device_token": p.str("device_token")}), "allow", "remembered_device")

	emu.SetPreauthResult("dave", "allow", "")
	b := h.do("POST", "/v1/users/dave/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push", "remember_device": true})
	if b.str("outcome") != "allow" || b.body["device_token"] != nil {
		t.Errorf("Duo bypass earned a device token: %d %v", b.status, b.body)
	}
}

// TestChallengeLockedOut (acceptance 4): a locked-out user is denied with
// retry_after (and Retry-After), told a recovery code would work, and the
// decision is audited.
func TestChallengeLockedOut(t *testing.T) {
	h := startHost(t, totpClients+"policy: {clients: {remember_device: {enabled: true}}}\n")
	secret := h.enroll("alice")
	tok := h.rememberDevice(t, "alice", secret)
	h.clock.Add(30 * time.Second)
	for range 5 {
		h.verify("alice", "000000")
	}
	for _, body := range []map[string]string{{"audience": "client"}, {"audience": "client", "device_token": tok}} {
		r := h.challenge("alice", body)
		wantDecision(t, r, "deny", "locked_out")
		if r.body["retry_after"] != 30.0 || r.header.Get("Retry-After") != "30" || r.body["recovery_available"] != true {
			t.Errorf("deny = %v, Retry-After %q", r.body, r.header.Get("Retry-After"))
		}
	}
	h.clock.Add(10 * time.Second)
	if r := h.challenge("alice", map[string]string{"audience": "client"}); r.body["retry_after"] != 20.0 {
		t.Errorf("retry_after after 10 s = %v", r.body["retry_after"])
	}
	h.clock.Add(20 * time.Second)
	wantDecision(t, h.challenge("alice", map[string]string{"audience": "client"}), "verify", "enrolled")
	if got := h.challengeAudit("alice"); !slices.Contains(got, "deny/locked_out") {
		t.Errorf("audit = %v", got)
	}
}

// TestChallengeRejectsBadRequests: the body is checked as verify's is.
func TestChallengeRejectsBadRequests(t *testing.T) {
	h := startHost(t, totpClients)
	for _, tt := range []struct {
		body any
		code string
	}{
		{map[string]string{"audience": "admins"}, "invalid_request"},
		{map[string]string{}, "invalid_request"},
		{map[string]string{"audience": "client", "client_ip": "not-an-ip"}, "invalid_request"},
		{map[string]string{"audience": "client", "password": "x"}, "invalid_json"},
		{"{", "invalid_json"},
	} {
		if r := h.challenge2(tt.body); r.status != http.StatusBadRequest || r.errCode() != tt.code {
			t.Errorf("%v: %d %v, want 400 %s", tt.body, r.status, r.body, tt.code)
		}
	}
	if r := h.doRaw("POST", "/v1/users/alice/challenge", "", map[string]string{"audience": "client"}); r.status != http.StatusUnauthorized {
		t.Errorf("without a key: %d", r.status)
	}
}

// challenge2 sends alice's challenge with a body that may be invalid on
// purpose.
func (h *testHost) challenge2(body any) response {
	h.t.Helper()
	return h.doRaw("POST", "/v1/users/alice/challenge", appKey, body)
}
