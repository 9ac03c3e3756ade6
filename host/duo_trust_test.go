package host_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// lastPreauth returns the trusted_device_token the last preauth sent to
// the emulator ("" when none was), and how many /auth calls came after it.
func lastPreauth(t *testing.T, emu *duotest.Server) (token string, authsAfter int) {
	t.Helper()
	reqs := emu.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		switch reqs[i].Path {
		case "/auth/v2/auth":
			authsAfter++
		case "/auth/v2/preauth":
			return reqs[i].Params.Get("trusted_device_token"), authsAfter
		}
	}
	t.Fatal("no preauth reached the emulator")
	return "", 0
}

// TestDuoTrustedDeviceToken (issue 8): Duo's trusted_device_token, given
// with an approved push when Duo's Remembered Devices policy is on, is
// kept sealed with the device the host remembers, and goes back to Duo's
// preauth when the application verifies with that device's token, so Duo
// lets the user in without a push. It goes only for the same user,
// audience and provider, never after the host revoked the device, and Duo
// keeps the last word: a token Duo forgot means a push again. An allow
// without a prompt earns no new device.
func TestDuoTrustedDeviceToken(t *testing.T) {
	emu := startEmulator(t)
	emu.SetRememberedDevices(30 * 24 * time.Hour)
	emu.AddUser("erin")
	emu.AddUser("fred")
	h := policyDuoHost(t, emu, "policy: {staff: {remember_device: {enabled: true, days: 7}}, clients: {remember_device: {enabled: true, days: 7}}}\n")
	for _, u := range []string{"erin", "fred"} {
		h.enrollDuo(emu, u, "staff")
	}

	// An approved push, remembered: the host's device token comes back;
	// Duo's token stays inside the host.
	emu.ScriptPush("erin", duotest.Push{Result: "allow"})
	v := h.duoVerify("erin", map[string]string{"factor": "push"})
	p := h.do("GET", "/v1/users/erin/verifications/"+v.str("txid")+"?remember_device=true&device_label=Laptop", appKey, nil)
	tok := p.str("device_token")
	if p.str("outcome") != "allow" || tok == "" {
		t.Fatalf("approved push with remember_device: %d %v", p.status, p.body)
	}
	if sent, _ := lastPreauth(t, emu); sent != "" {
		t.Errorf("the first preauth sent a trust token %q", sent)
	}

	// Verify with the device token: preauth carries Duo's token, Duo
	// remembers the device, and no push is sent.
	r := h.do("POST", "/v1/users/erin/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push",
		"device_token": tok, "remember_device": true})
	duoToken, auths := lastPreauth(t, emu)
	if r.str("outcome") != "allow" || duoToken == "" || auths != 0 {
		t.Fatalf("verify with the device token: %d %v; preauth token %q, %d auth calls after it", r.status, r.body, duoToken, auths)
	}
	if r.body["device_token"] != nil {
		t.Errorf("an allow without a prompt earned a new device token: %v", r.body)
	}
	if got := auditDetail(t, h, "erin", "duo"); got != "remembered_device" {
		t.Errorf("audit detail duo = %q, want remembered_device", got)
	}
	// Duo's token is a secret: sealed at rest, never in an answer.
	dir := filepath.Dir(h.svc.Config.StorageDSN)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		if bytes.Contains(b, []byte(duoToken)) {
			t.Errorf("%s holds Duo's trusted_device_token in clear", f.Name())
		}
	}
	if bytes.Contains([]byte(toJSON(r.body)+toJSON(p.body)), []byte(duoToken)) {
		t.Error("an API answer shows Duo's trusted_device_token")
	}

	// Not for another user, another audience, or TOTP: preauth gets nothing.
	for _, tt := range []struct{ user, audience string }{{"fred", "staff"}, {"erin", "client"}} {
		emu.ScriptPush(tt.user, duotest.Push{Result: "deny"})
		r := h.do("POST", "/v1/users/"+tt.user+"/verify", appKey, map[string]any{"provider": "duo", "audience": tt.audience,
			"factor": "push", "device_token": tok})
		if sent, _ := lastPreauth(t, emu); sent != "" || r.str("outcome") != "pending" {
			t.Errorf("%s/%s with erin's device token: preauth token %q, answer %d %v", tt.user, tt.audience, sent, r.status, r.body)
		}
		h.poll(tt.user, r.str("txid")) // the push ends (denied), so the next is a new one
	}

	// Duo forgot the device (its admin reset it): Duo asks again.
	emu.RevokeTrustedDevices("erin")
	h.clock.Add(11 * time.Minute) // a new push window (3 pushes per 10 minutes)
	emu.ScriptPush("erin", duotest.Push{Result: "deny"})
	r = h.do("POST", "/v1/users/erin/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push", "device_token": tok})
	if sent, _ := lastPreauth(t, emu); sent != duoToken || r.str("outcome") != "pending" {
		t.Errorf("after Duo revoked: preauth token %q, answer %d %v; want the token sent and a push", sent, r.status, r.body)
	}
	h.poll("erin", r.str("txid"))

	// A new remembered device, then revoked in the host: Duo's token is
	// gone with it.
	h.clock.Add(11 * time.Minute)
	emu.ScriptPush("erin", duotest.Push{Result: "allow"})
	v = h.duoVerify("erin", map[string]string{"factor": "push"})
	p = h.do("GET", "/v1/users/erin/verifications/"+v.str("txid")+"?remember_device=true", appKey, nil)
	tok2 := p.str("device_token")
	if tok2 == "" {
		t.Fatalf("second remembered push: %d %v", p.status, p.body)
	}
	if n := h.do("DELETE", "/v1/users/erin/devices", appKey, nil); n.status != http.StatusOK {
		t.Fatalf("revoke all: %d %v", n.status, n.body)
	}
	r = h.do("POST", "/v1/users/erin/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push", "device_token": tok2})
	if sent, _ := lastPreauth(t, emu); sent != "" || r.str("outcome") != "pending" {
		t.Errorf("after the host revoked the device: preauth token %q, answer %d %v", sent, r.status, r.body)
	}
}

// auditDetail returns a detail of the user's latest verify audit entry.
func auditDetail(t *testing.T, h *testHost, user, key string) string {
	t.Helper()
	entries, _ := h.do("GET", "/v1/audit?user="+user, adminKey, nil).body["entries"].([]any)
	for i := len(entries) - 1; i >= 0; i-- {
		m := entries[i].(map[string]any)
		if m["event"] == "verify" {
			d, _ := m["details"].(map[string]any)
			s, _ := d[key].(string)
			return s
		}
	}
	return ""
}
