package host_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

const webauthnOrigin = "http://localhost:8080"

const webauthnProviders = `providers:
  webauthn:
    enabled: true
    clients: true
    settings:
      rp_id: localhost
      rp_display_name: ACME
      origins: ` + webauthnOrigin + `
`

// TestWebAuthnLogin: through the HTTP API and the plugin binary, a user
// enrolls a security key (the software authenticator answers the options
// the host hands over), logs in by starting a verification and posting
// the assertion, a burst of the same assertion allows once, a second key
// is added, listed and the first removed (then refused); audit shows each
// step and the log holds no credential.
func TestWebAuthnLogin(t *testing.T) {
	plugins := testbin.Copy(t, "twofactor-provider-webauthn")
	chmodGoW(t, plugins)
	var logs syncbuf.Buffer
	h := startHostIn(t, plugins, webauthnProviders, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug}))
	first, second := webauthntest.New(webauthnOrigin), webauthntest.New(webauthnOrigin)

	addKey := func(a *webauthntest.Authenticator, label string) response {
		t.Helper()
		r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "webauthn", "audience": "client",
			"inputs": map[string]string{"label": label}})
		d, _ := r.body["display"].(map[string]any)
		public, _ := d["public"].(string)
		if r.status != http.StatusCreated || public == "" {
			t.Fatalf("enroll: %d %v", r.status, r.body)
		}
		att, err := a.Create(public)
		if err != nil {
			t.Fatal(err)
		}
		return h.do("POST", "/v1/users/alice/enrollments/webauthn/confirm", appKey, map[string]any{"credential": json.RawMessage(att)})
	}
	if c := addKey(first, "YubiKey"); c.status != http.StatusOK || c.str("status") != "active" || c.body["recovery_codes"] == nil {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}

	d := h.do("POST", "/v1/users/alice/challenge", appKey, map[string]string{"audience": "client"})
	ps, _ := d.body["providers"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["name"] != "webauthn" || fmt.Sprint(ps[0].(map[string]any)["challenge_first"]) != "[code]" {
		t.Errorf("/challenge: %v, want webauthn needing a challenge first", d.body)
	}

	start := func() (txid, public string) {
		t.Helper()
		s := h.do("POST", "/v1/users/alice/verifications", appKey, map[string]string{"provider": "webauthn", "audience": "client"})
		if s.status != http.StatusCreated || s.str("txid") == "" || s.str("public") == "" {
			t.Fatalf("start: %d %v", s.status, s.body)
		}
		return s.str("txid"), s.str("public")
	}
	verify := func(txid, answer string) response {
		t.Helper()
		return h.do("POST", "/v1/users/alice/verify", appKey, map[string]any{"provider": "webauthn", "audience": "client",
			"txid": txid, "credential": json.RawMessage(answer)})
	}
	get := func(a *webauthntest.Authenticator, public string) string {
		t.Helper()
		ans, err := a.Get(public)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}

	txid, public := start()
	if v := verify(txid, get(first, public)); v.str("outcome") != "allow" {
		t.Fatalf("verify: %d %v", v.status, v.body)
	}

	// A burst of one assertion: the state's compare-and-swap lets one in.
	txid, public = start()
	ans := get(first, public)
	var wg sync.WaitGroup
	outcomes := make([]string, 8)
	for i := range outcomes {
		wg.Go(func() {
			r := h.do("POST", "/v1/users/alice/verify", appKey, map[string]any{"provider": "webauthn", "audience": "client",
				"txid": txid, "credential": json.RawMessage(ans)})
			outcomes[i] = r.str("outcome") + "/" + r.errCode()
		})
	}
	wg.Wait()
	if n := strings.Count(strings.Join(outcomes, " "), "allow/"); n != 1 {
		t.Errorf("a burst of one assertion: %v, want exactly one allow", outcomes)
	}

	// A second key, added while the first stays usable.
	if c := addKey(second, "Backup"); c.status != http.StatusOK || c.str("status") != "active" || c.body["recovery_codes"] != nil {
		t.Fatalf("add a second key: %d %v", c.status, c.body)
	}
	l := h.do("GET", "/v1/users/alice/enrollments/webauthn/credentials", appKey, nil)
	if cs, _ := l.body["credentials"].([]any); len(cs) != 2 || cs[0].(map[string]any)["label"] != "YubiKey" || cs[1].(map[string]any)["label"] != "Backup" {
		t.Fatalf("list: %d %v", l.status, l.body)
	}
	txid, public = start()
	if v := verify(txid, get(second, public)); v.str("outcome") != "allow" {
		t.Fatalf("verify with the second key: %d %v", v.status, v.body)
	}
	if r := h.do("DELETE", "/v1/users/alice/enrollments/webauthn/credentials/"+first.ID(), adminKey, nil); r.status != http.StatusOK {
		t.Fatalf("remove: %d %v", r.status, r.body)
	}
	txid, public = start()
	if v := verify(txid, get(first, public)); v.str("outcome") != "deny" || v.str("reason") != "x-unknown_credential" {
		t.Errorf("verify with the removed key: %d %v", v.status, v.body)
	}
	for _, tc := range []struct {
		what, method, path string
		status             int
		code               string
	}{
		{"remove the last key", "DELETE", "/v1/users/alice/enrollments/webauthn/credentials/" + second.ID(), http.StatusBadRequest, "invalid_request"},
		{"remove a removed key", "DELETE", "/v1/users/alice/enrollments/webauthn/credentials/" + first.ID(), http.StatusBadRequest, "invalid_request"},
		{"list a user without keys", "GET", "/v1/users/bob/enrollments/webauthn/credentials", http.StatusNotFound, "not_enrolled"},
		{"list an unknown provider", "GET", "/v1/users/alice/enrollments/nope/credentials", http.StatusNotFound, "unknown_provider"},
	} {
		key := appKey
		if tc.method == "DELETE" {
			key = adminKey // an app removes a key with a step-up (webauthn_stepup_test.go)
		}
		if r := h.do(tc.method, tc.path, key, nil); r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.what, r.status, r.body, tc.status, tc.code)
		}
	}
	if l := h.do("GET", "/v1/users/alice/enrollments/webauthn/credentials", appKey, nil); len(l.body["credentials"].([]any)) != 1 {
		t.Errorf("after the refused removals: %v, want the one key left", l.body)
	}
	for _, bad := range []map[string]any{
		{"provider": "webauthn", "audience": "client", "txid": txid, "credential": "a string"},
		{"provider": "webauthn", "audience": "client", "txid": txid, "credential": json.RawMessage(`{"x":"` + strings.Repeat("a", 33<<10) + `"}`)},
		{"provider": "webauthn", "audience": "client", "txid": txid, "code": "123456", "credential": json.RawMessage(`{}`)},
	} {
		if r := h.doRaw("POST", "/v1/users/alice/verify", appKey, bad); r.status != http.StatusBadRequest {
			t.Errorf("verify with a bad credential: %d %v, want 400", r.status, r.body)
		}
	}

	// A security key's challenge sends nothing: the send limit holds it
	// at five times the push limit (15 in 10 minutes), and a burst past
	// it is refused whole.
	h.clock.Add(11 * time.Minute)
	for i := 1; i <= 15; i++ {
		if s := h.do("POST", "/v1/users/alice/verifications", appKey, map[string]string{"provider": "webauthn", "audience": "client"}); s.status != http.StatusCreated {
			t.Fatalf("challenge %d of 15: %d %v", i, s.status, s.body)
		}
	}
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = h.do("POST", "/v1/users/alice/verifications", appKey, map[string]string{"provider": "webauthn", "audience": "client"}).status
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusTooManyRequests {
			t.Errorf("a burst past 15 challenges: %v, want 429 for each", codes)
			break
		}
	}

	var events []string
	for _, e := range h.do("GET", "/v1/audit?user=alice", adminKey, nil).body["entries"].([]any) {
		m := e.(map[string]any)
		events = append(events, fmt.Sprintf("%s:%v:%v", m["event"], m["outcome"], m["reason"]))
	}
	all := strings.Join(events, " ")
	for _, want := range []string{"enroll.begin:pending", "enroll.confirm:active", "enroll.begin:adding", "challenge_sent:",
		"verify:allow", "verify:deny:x-unknown_credential", "enroll.remove:removed"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit has no %s: %v", want, events)
		}
	}
	for _, secret := range []string{ans, `"pk"`, "publicKey", "attestationObject"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %.40q", secret)
		}
	}
}
