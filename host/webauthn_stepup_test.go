package host_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// TestRemoveCredentialStepUp: an application removes one of a user's
// security keys with the app key only after a step-up the host checks (the
// admin's DELETE refuses the app key); bad input and a wrong code remove
// nothing, the wrong code counts, and a removal that cannot happen (a key
// not held, the last key) is refused before the code is checked, so the
// code still works after. Bursts: eight removals of one key with one
// recovery code remove it once, and removals of both of the last two keys
// at once leave one.
func TestRemoveCredentialStepUp(t *testing.T) {
	h := webauthnHost(t)
	keys := newKeys(3)
	codes := enrollKeys(t, h, h, "alice", keys)
	held := func() []string { return h.keysOf("alice") }
	remove := func(id string, stepUp map[string]string) response { return h.removeKey("alice", id, stepUp) }

	for _, tt := range []struct {
		name   string
		id     string
		stepUp map[string]string
		status int
		code   string
	}{
		{"a key not held", "bm90LWEta2V5", recoveryStepUp(codes[0]), 404, "not_found"},
		{"a push", keys[0].ID(), map[string]string{"provider": "recovery", "code": "1", "factor": "push"}, 400, "invalid_request"},
		{"no code", keys[0].ID(), map[string]string{"provider": "recovery", "code": ""}, 400, "invalid_request"},
		{"a wrong recovery code", keys[0].ID(), recoveryStepUp("AAAA-BBBB-CCCC-DDDD"), 422, "invalid_code"},
	} {
		if r := remove(tt.id, tt.stepUp); r.status != tt.status || r.errCode() != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	if r := h.do("DELETE", "/v1/users/alice/enrollments/webauthn/credentials/"+url.PathEscape(keys[0].ID()), appKey, nil); r.status != http.StatusForbidden {
		t.Errorf("DELETE with an app key: %d %v, want 403", r.status, r.body)
	}
	if ids := held(); len(ids) != 3 {
		t.Fatalf("bad step-ups removed something: %v", ids)
	}
	if n := h.auditCount("alice", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want the wrong recovery code's 1", n)
	}

	// One recovery code, eight removals of one key at once: the code
	// works once, so the key goes once.
	statuses := burst.Count(8, func(int) int { return remove(keys[0].ID(), recoveryStepUp(codes[0])).status })
	if statuses[http.StatusOK] != 1 {
		t.Errorf("a burst of one step-up: %v, want exactly one 200", statuses)
	}
	for s := range statuses {
		// The rest: the code replayed (422), counted against the recovery
		// budget until it backs off (429), or the key already gone when
		// read (404).
		if s != http.StatusOK && s != http.StatusUnprocessableEntity && s != http.StatusTooManyRequests && s != http.StatusNotFound {
			t.Errorf("a burst of one step-up: %v", statuses)
			break
		}
	}
	if ids := held(); len(ids) != 2 || slices.Contains(ids, keys[0].ID()) {
		t.Fatalf("after the burst: %v, want the two other keys", ids)
	}

	// Both of the last two keys at once, each with a recovery code of its
	// own: one goes, one stays. (The replays above backed the recovery
	// budget off: an admin ends that first.)
	if r := h.do("POST", "/v1/users/alice/unlock", adminKey, nil); r.status != http.StatusNoContent {
		t.Fatalf("unlock: %d %v", r.status, r.body)
	}
	statuses = burst.Count(2, func(i int) int { return remove(keys[1+i].ID(), recoveryStepUp(codes[1+i])).status })
	t.Logf("removing the last two keys at once: %v", statuses)
	if ids := held(); len(ids) != 1 || statuses[http.StatusOK] != 1 {
		t.Fatalf("removing the last two keys at once: %v, keys left %v; want one removed, one kept", statuses, ids)
	}

	// The last key: refused before the step-up, whose code still works.
	last := held()[0]
	if r := remove(last, recoveryStepUp(codes[3])); r.status != http.StatusBadRequest || r.errCode() != "invalid_request" {
		t.Errorf("remove the last key: %d %v, want 400 invalid_request", r.status, r.body)
	}
	if v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "recovery", "audience": "client", "code": codes[3]}); v.str("outcome") != "allow" {
		t.Errorf("the recovery code sent with the refused removal: %d %v, want it unspent", v.status, v.body)
	}
	if n := h.auditCount("alice", "enroll.remove", "removed"); n != 2 {
		t.Errorf("%d removals audited, want 2", n)
	}
}

// TestRemoveCredentialStepUpBurstReplicas: TestRemoveCredentialStepUp's
// bursts over two replicas on PostgreSQL: one recovery code sent with 8
// removals of one key, split between the replicas, removes it once; then
// 8 removals of the last two keys (each with a recovery code of its own)
// leave one key.
func TestRemoveCredentialStepUpBurstReplicas(t *testing.T) {
	a, b := webauthnReplicas(t)
	hosts := []*testHost{a, b}
	keys := newKeys(3)
	codes := enrollKeys(t, a, b, "alice", keys)
	if len(codes) < 9 {
		t.Fatalf("%d recovery codes", len(codes))
	}

	got := httpBurst(t, hosts, 8, func(h *testHost, _ int) response { return h.removeKey("alice", keys[0].ID(), recoveryStepUp(codes[0])) })
	// Removed (200 with the keys left: verdictOf says "/"); the code
	// replayed; the recovery budget backed off; the key gone when read.
	for v := range got {
		if v != "/" && v != "422" && v != "429" && v != "404" {
			t.Errorf("unexpected answer %q in the burst: %v", v, got)
		}
	}
	if ids := b.keysOf("alice"); got["/"] != 1 || len(ids) != 2 || slices.Contains(ids, keys[0].ID()) {
		t.Fatalf("one recovery code 8 times at once over two replicas: %v, keys left %v; want one removal", got, ids)
	}

	if r := b.do("POST", "/v1/users/alice/unlock", adminKey, nil); r.status != http.StatusNoContent {
		t.Fatalf("unlock: %d %v", r.status, r.body)
	}
	got = httpBurst(t, hosts, 8, func(h *testHost, i int) response {
		return h.removeKey("alice", keys[1+i%2].ID(), recoveryStepUp(codes[1+i]))
	})
	for v := range got {
		// One removal; the others refused as the last key (400), lost to
		// the removal that changed the enrollment first (409), after the
		// key went (404), or held at the gate: 8 step-ups in flight at
		// once are more than its free attempts, right codes or not (429).
		if v != "/" && v != "400" && v != "409" && v != "404" && v != "429" {
			t.Errorf("unexpected answer %q in the burst: %v", v, got)
		}
	}
	if ids := a.keysOf("alice"); got["/"] != 1 || len(ids) != 1 {
		t.Errorf("8 removals of the last two keys over two replicas: %v, keys left %v; want one removal, one key kept", got, ids)
	}
	if n := a.auditCount("alice", "enroll.remove", "removed"); n != 2 {
		t.Errorf("%d removals audited, want 2", n)
	}
}

// webauthnHost starts a host with the webauthn provider's plugin binary.
func webauthnHost(t *testing.T) *testHost {
	t.Helper()
	plugins := testbin.Copy(t, "twofactor-provider-webauthn")
	chmodGoW(t, plugins)
	return startHostIn(t, plugins, webauthnProviders, hclog.NewNullLogger())
}

// webauthnReplicas starts two replicas on PostgreSQL with the webauthn
// provider, stopped at the test's end.
func webauthnReplicas(t *testing.T) (a, b *testHost) {
	t.Helper()
	dsn := postgresDSN(t)
	plugins := testbin.Copy(t, "twofactor-provider-webauthn")
	chmodGoW(t, plugins)
	config := postgresConfigIn(t, dsn, plugins, webauthnProviders)
	a, b = startReplica(t, config), startReplica(t, config)
	t.Cleanup(a.stop)
	t.Cleanup(b.stop)
	return a, b
}

func newKeys(n int) []*webauthntest.Authenticator {
	keys := make([]*webauthntest.Authenticator, n)
	for i := range keys {
		keys[i] = webauthntest.New(webauthnOrigin)
	}
	return keys
}

// enrollKeys enrolls each key for user, beginning on begin and confirming
// on confirm (one host, or two replicas), and returns the recovery codes
// the first confirmation gave.
func enrollKeys(t *testing.T, begin, confirm *testHost, user string, keys []*webauthntest.Authenticator) []string {
	t.Helper()
	var codes []string
	for i, a := range keys {
		r := begin.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "webauthn", "audience": "client",
			"inputs": map[string]string{"label": fmt.Sprintf("key %d", i)}})
		d, _ := r.body["display"].(map[string]any)
		public, _ := d["public"].(string)
		if r.status != http.StatusCreated || public == "" {
			t.Fatalf("enroll key %d: %d %v", i, r.status, r.body)
		}
		att, err := a.Create(public)
		if err != nil {
			t.Fatal(err)
		}
		c := confirm.do("POST", "/v1/users/"+user+"/enrollments/webauthn/confirm", appKey, map[string]any{"credential": json.RawMessage(att)})
		if c.status != http.StatusOK || c.str("status") != "active" {
			t.Fatalf("confirm key %d: %d %v", i, c.status, c.body)
		}
		if i == 0 {
			for _, rc := range c.body["recovery_codes"].([]any) {
				codes = append(codes, rc.(string))
			}
		}
	}
	if ids := confirm.keysOf(user); len(ids) != len(keys) {
		t.Fatalf("keys after enrolling %d: %v", len(keys), ids)
	}
	return codes
}

// keysOf lists the ids of user's webauthn keys.
func (h *testHost) keysOf(user string) []string {
	h.t.Helper()
	r := h.do("GET", "/v1/users/"+user+"/enrollments/webauthn/credentials", appKey, nil)
	var ids []string
	cs, _ := r.body["credentials"].([]any)
	for _, c := range cs {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	return ids
}

// keyAssertion starts a security-key verification of user and returns its
// txid and key's answer to it.
func (h *testHost) keyAssertion(user string, key *webauthntest.Authenticator) (txid string, answer json.RawMessage) {
	h.t.Helper()
	s := h.do("POST", "/v1/users/"+user+"/verifications", appKey, map[string]string{"provider": "webauthn", "audience": "client"})
	if s.status != http.StatusCreated || s.str("txid") == "" {
		h.t.Fatalf("start: %d %v", s.status, s.body)
	}
	ans, err := key.Get(s.str("public"))
	if err != nil {
		h.t.Fatal(err)
	}
	return s.str("txid"), json.RawMessage(ans)
}

// removeKey asks for the removal of user's key id with stepUp (a
// map[string]string of a code, or a map[string]any with a credential).
func (h *testHost) removeKey(user, id string, stepUp any) response {
	return h.do("POST", "/v1/users/"+user+"/enrollments/webauthn/credentials/"+url.PathEscape(id)+"/remove", appKey,
		map[string]any{"audience": "client", "step_up": stepUp})
}

func recoveryStepUp(code string) map[string]string {
	return map[string]string{"provider": "recovery", "code": code}
}
