package host_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// TestAuditTrail drives a session and reads it back from GET /v1/audit, in
// order, with the API key names as actors; then checks that neither the
// database nor the log holds the TOTP secret or any submitted code.
func TestAuditTrail(t *testing.T) {
	var logBuf syncbuf.Buffer
	h := startHostLog(t, totpClients, newBufferLogger(&logBuf))
	secret := h.enroll("alice")
	confirmCode := h.code(secret)
	h.clock.Add(30 * time.Second)
	good := h.code(secret)
	r := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "totp", "audience": "client", "code": good, "client_ip": "198.51.100.4"})
	if r.str("outcome") != "allow" {
		t.Fatalf("verify: %v", r.body)
	}
	h.verify("alice", good) // replayed
	wrong := "000000"
	if good == wrong {
		wrong = "111111"
	}
	h.verify("alice", wrong)
	h.verify("bob", wrong) // not enrolled: not alice's trail
	h.do("DELETE", "/v1/users/alice/enrollments/totp", adminKey, nil)

	a := h.do("GET", "/v1/audit?user=alice", adminKey, nil)
	if a.status != http.StatusOK {
		t.Fatalf("audit: %d %v", a.status, a.body)
	}
	type row struct{ event, actor, outcome, reason string }
	want := []row{
		{"enroll.begin", "panel", "pending", ""},
		{"enroll.confirm", "panel", "active", ""},
		{"recovery.issued", "panel", "issued", ""},
		{"verify", "panel", "allow", ""},
		{"verify", "panel", "deny", "replayed"},
		{"verify", "panel", "deny", "invalid_code"},
		{"enrollment.reset", "ops", "deleted", ""},
	}
	entries := a.body["entries"].([]any)
	if len(entries) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		m := e.(map[string]any)
		got := row{m["event"].(string), m["actor"].(string), str(m["outcome"]), str(m["reason"])}
		if got != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got, want[i])
		}
	}
	if ip := entries[3].(map[string]any)["client_ip"]; ip != "198.51.100.4" {
		t.Errorf("client ip not recorded: %v", ip)
	}
	if p := h.do("GET", "/v1/audit", appKey, nil); p.status != http.StatusForbidden {
		t.Errorf("app key read the audit log: %d", p.status)
	}
	// Paging: the cursor moves forward.
	p1 := h.do("GET", "/v1/audit?user=alice&limit=2", adminKey, nil)
	next := p1.body["next_after"].(float64)
	p2 := h.do("GET", "/v1/audit?user=alice&limit=2&after="+strconv.FormatInt(int64(next), 10), adminKey, nil)
	if len(p2.body["entries"].([]any)) != 2 || p2.body["entries"].([]any)[0].(map[string]any)["event"] != "recovery.issued" {
		t.Errorf("second page: %v", p2.body)
	}

	// No secret or code anywhere on disk or in the log.
	recovery := h.lastRecovery
	dir := filepath.Dir(h.svc.Config.StorageDSN)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		for _, s := range append([]string{secret, confirmCode, good, wrong}, recovery...) {
			if strings.Contains(string(b), s) {
				t.Errorf("%s contains %q", f.Name(), s)
			}
		}
	}
	for _, s := range append([]string{secret, confirmCode, good}, recovery...) {
		if strings.Contains(logBuf.String(), `"`+s+`"`) || strings.Contains(logBuf.String(), "="+s) {
			t.Errorf("log contains %q", s)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }
