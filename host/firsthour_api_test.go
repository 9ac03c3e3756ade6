package host_test

// The first-hour frictions of issue 19 as the API sees them: the
// audience's one word and its alias, static assets at debug, an API key
// file rotated by a reload.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
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
	bad := h.doRaw("POST", "/v1/users/bob/enrollments", appKey, map[string]string{"provider": "totp", "audience": "clint"})
	if msg, _ := bad.body["error"].(map[string]any)["message"].(string); bad.status != http.StatusBadRequest ||
		!strings.Contains(msg, `"staff" or "client"`) {
		t.Errorf("misspelt audience: %d %v", bad.status, bad.body)
	}
}

// TestStaticAssetsLoggedAtDebug: the web UI's stylesheet and script are
// logged at debug, not info, where the API's requests are.
func TestStaticAssetsLoggedAtDebug(t *testing.T) {
	var buf syncbuf.Buffer
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

// TestAPIKeyFileRotatedOnReload: an API key read from key_file is read
// again on a reload, so rotating it is: write the new key, send SIGHUP
// (here: Reload). The old key stops working, the new one works.
func TestAPIKeyFileRotatedOnReload(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	keyFile := filepath.Join(filepath.Dir(path), "ops.key")
	if err := os.WriteFile(keyFile, []byte(adminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "{name: ops, key: "+adminKey+", scope: admin}", "{name: ops, key_file: ops.key, scope: admin}", 1)
	if text == string(b) {
		t.Fatal("writeConfig changed shape")
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHostAt(t, plugins, path, hclog.NewNullLogger())
	if r := h.do("GET", "/v1/providers", adminKey, nil); r.status != http.StatusOK {
		t.Fatalf("key from key_file: %d %v", r.status, r.body)
	}
	const rotated = "ops-7sQm2LxV9pKcR4tWz8YbN3eJ6hGdF5aU1oIiE0rTyXq"
	if err := os.WriteFile(keyFile, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/v1/providers", adminKey, nil); r.status != http.StatusUnauthorized {
		t.Errorf("old key after rotation: %d", r.status)
	}
	if r := h.do("GET", "/v1/providers", rotated, nil); r.status != http.StatusOK {
		t.Errorf("new key after rotation: %d %v", r.status, r.body)
	}
}
