package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientAudienceAlias: the API's word for the audience is "client";
// "clients" (the config's old word) is read as it, in enroll, challenge and
// verify, and what is stored and audited says "client". A misspelt
// audience is refused naming both words to use.
func TestClientAudienceAlias(t *testing.T) {
	h := startHost(t, totpClients)
	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]string{"provider": "totp", "audience": "clients"})
	if r.status != http.StatusCreated {
		t.Fatalf("enroll with audience clients: %d %v", r.status, r.body)
	}
	secret := otpSecret(t, r)
	if c := h.do("POST", "/v1/users/alice/enrollments/totp/confirm", appKey, map[string]string{"code": h.code(secret)}); c.status != http.StatusOK {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}
	if c := h.do("POST", "/v1/users/alice/challenge", appKey, map[string]string{"audience": "clients"}); c.status != http.StatusOK || c.str("decision") != "verify" {
		t.Errorf("challenge with audience clients: %d %v", c.status, c.body)
	}
	h.clock.Add(30 * time.Second)
	v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "totp", "audience": "clients", "code": h.code(secret)})
	if v.status != http.StatusOK || v.str("outcome") != "allow" {
		t.Fatalf("verify with audience clients: %d %v", v.status, v.body)
	}
	a := h.do("GET", "/v1/audit?user=alice", adminKey, nil)
	entries, _ := a.body["entries"].([]any)
	if a.status != http.StatusOK || len(entries) < 3 {
		t.Fatalf("audit: %d %v", a.status, a.body)
	}
	for _, e := range entries {
		if aud, _ := e.(map[string]any)["audience"].(string); aud != "" && aud != "client" {
			t.Errorf("audit entry stored audience %q: %v", aud, e)
		}
	}
	bad := h.do("POST", "/v1/users/bob/enrollments", appKey, map[string]string{"provider": "totp", "audience": "clint"})
	if msg, _ := bad.body["error"].(map[string]any)["message"].(string); bad.status != http.StatusBadRequest ||
		!strings.Contains(msg, `"staff" or "client"`) {
		t.Errorf("misspelt audience: %d %v", bad.status, bad.body)
	}
}

// TestStaticAssetsLoggedAtDebug: the web UI's stylesheet and script are
// logged at debug, not info, where the API's requests are.
func TestStaticAssetsLoggedAtDebug(t *testing.T) {
	var buf syncBuffer
	h := startHostLog(t, totpClients, newBufferLogger(&buf))
	if r, err := http.Get(h.url + "/ui/static/style.css"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("style.css: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	h.do("GET", "/v1/providers", adminKey, nil)
	log := buf.String()
	if !strings.Contains(log, "path=/v1/providers") || strings.Contains(log, "/ui/static/") {
		t.Errorf("info log:\n%s", log)
	}
}
