package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestRekeyResealsTrustTokens: Duo's trusted_device_token, kept sealed
// with a remembered device, is re-sealed by `twofactor rekey` like the
// enrollments. Before, rekey left it under the previous key: once that key
// was removed (what rekey is for), the token opened under no key, the host
// dropped it, and Duo pushed again to a device the user had it remember.
// The doctor counts such tokens with the enrollments.
func TestRekeyResealsTrustTokens(t *testing.T) {
	emu := startEmulator(t)
	emu.SetRememberedDevices(30 * 24 * time.Hour)
	emu.AddUser("erin")
	h := policyDuoHost(t, emu, "policy: {staff: {remember_device: {enabled: true, days: 7}}}\n")
	h.enrollDuo(emu, "erin", "staff")
	emu.ScriptPush("erin", duotest.Push{Result: "allow"})
	v := h.duoVerify("erin", map[string]string{"factor": "push"})
	p := h.do("GET", "/v1/users/erin/verifications/"+v.str("txid")+"?remember_device=true&device_label=Laptop", appKey, nil)
	tok := p.str("device_token")
	if p.str("outcome") != "allow" || tok == "" {
		t.Fatalf("approved push with remember_device: %d %v", p.status, p.body)
	}
	r := h.do("POST", "/v1/users/erin/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push", "device_token": tok})
	duoToken, _ := lastPreauth(t, emu)
	if r.str("outcome") != "allow" || duoToken == "" {
		t.Fatalf("verify with the device token before the rotation: %d %v, preauth token %q", r.status, r.body, duoToken)
	}
	path, plugins, clk := h.configPath, h.pluginsDir, h.clock
	h.stop()

	setKeys(t, path, key2, key1)
	if _, out, rep := doctor(t, path); !strings.Contains(out, "1 remembered device trust token(s) still encrypted under a previous key") {
		t.Errorf("doctor after the rotation, before rekey: want the trust token counted:\n%s", out)
	} else if st, _, _ := rep.check("encryption_key"); st != "warn" {
		t.Errorf("doctor after the rotation: encryption_key %s, want warn", st)
	}
	if code, out, stderr := runCLI("rekey", "--config", path); code != 0 || !strings.Contains(out, "1 remembered device trust token(s)") {
		t.Fatalf("rekey: exit %d %q %q", code, out, stderr)
	}
	setKeys(t, path, key2)
	if _, out, rep := doctor(t, path); !rep.ok("encryption_key") || !strings.Contains(out, "1 remembered device trust token(s)") {
		t.Errorf("doctor with the new key alone after rekey:\n%s", out)
	}

	h = serveConfig(t, path, plugins, clk, hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	r = h.do("POST", "/v1/users/erin/verify", appKey, map[string]any{"provider": "duo", "audience": "staff", "factor": "push", "device_token": tok})
	sent, auths := lastPreauth(t, emu)
	if sent != duoToken || auths != 0 || r.str("outcome") != "allow" {
		t.Errorf("verify with the device token under the new key alone: %d %v; preauth token %q (want %q), %d auth calls after it",
			r.status, r.body, sent, duoToken, auths)
	}
}
