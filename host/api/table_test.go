package api

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
)

const (
	testAppKey   = "app-key-for-the-route-table-test"
	testAdminKey = "admin-key-for-the-route-table-test"
)

func testKeys() []config.APIKey {
	return []config.APIKey{
		{Name: "app", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(testAppKey))},
		{Name: "admin", Scope: config.ScopeAdmin, Hash: sha256.Sum256([]byte(testAdminKey))},
	}
}

func call(s *Server, method, path, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestRouteTableAuth: every route of the table that needs a key refuses a
// request without one (401), and an admin route refuses an app key (403),
// before any handler runs (the framework here is nil: a handler reached
// would panic).
func TestRouteTableAuth(t *testing.T) {
	s := NewServer(nil, testKeys(), hclog.NewNullLogger(),
		WithMetrics(http.NotFoundHandler(), false), WithConfigStatus(func() ConfigStatus { return ConfigStatus{} }))
	n := 0
	for _, rt := range s.routeTable() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok || rt.scope == public {
			continue
		}
		n++
		path = strings.NewReplacer("{user}", "alice", "{provider}", "totp", "{txid}", "tx1", "{id}", "d1").Replace(path)
		if w := call(s, method, path, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", rt.pattern, w.Code)
		}
		if w := call(s, method, path, "not-a-key"); w.Code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong key: %d, want 401", rt.pattern, w.Code)
		}
		if rt.scope == config.ScopeAdmin {
			if w := call(s, method, path, testAppKey); w.Code != http.StatusForbidden {
				t.Errorf("%s with an app key: %d, want 403", rt.pattern, w.Code)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d keyed routes in the table", n)
	}
}

// TestRouteTableOptions: a route whose option is not given is not served
// (404 in the API's shape, absent from Routes); given, it is served with
// its scope, and SetKeys rotates the keys it accepts.
func TestRouteTableOptions(t *testing.T) {
	bare := NewServer(nil, testKeys(), hclog.NewNullLogger())
	for _, p := range []string{"GET /metrics", "GET /v1/config/status", "/ui/"} {
		if slices.Contains(bare.Routes(), p) {
			t.Errorf("without its option, %q is served", p)
		}
	}
	if w := call(bare, "GET", "/metrics", testAdminKey); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not_found") {
		t.Errorf("bare GET /metrics: %d %s", w.Code, w.Body)
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) })
	full := NewServer(nil, testKeys(), hclog.NewNullLogger(), WithMetrics(metrics, false),
		WithConfigStatus(func() ConfigStatus {
			return ConfigStatus{Hash: "h1", LoadedAt: at, Watching: true, RefusedAt: at, RefusedError: "bad", RefusedHash: "h2"}
		}))
	if w := call(full, "GET", "/metrics", testAdminKey); w.Code != http.StatusOK || w.Body.String() != "m 1\n" {
		t.Errorf("GET /metrics (admin): %d %q", w.Code, w.Body)
	}
	w := call(full, "GET", "/v1/config/status", testAdminKey)
	var st struct {
		Hash        string `json:"hash"`
		Watch       struct{ Watching bool }
		LastRefused struct{ Error, Hash string } `json:"last_refused"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &st); w.Code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/config/status: %d %s (%v)", w.Code, w.Body, err)
	}
	if st.Hash != "h1" || !st.Watch.Watching || st.LastRefused.Error != "bad" || st.LastRefused.Hash != "h2" {
		t.Errorf("config status = %+v", st)
	}

	public := NewServer(nil, testKeys(), hclog.NewNullLogger(), WithMetrics(metrics, true))
	if w := call(public, "GET", "/metrics", ""); w.Code != http.StatusOK {
		t.Errorf("public GET /metrics without a key: %d", w.Code)
	}

	const rotated = "rotated-admin-key"
	full.SetKeys([]config.APIKey{{Name: "new", Scope: config.ScopeAdmin, Hash: sha256.Sum256([]byte(rotated))}})
	if w := call(full, "GET", "/metrics", testAdminKey); w.Code != http.StatusUnauthorized {
		t.Errorf("old key after SetKeys: %d, want 401", w.Code)
	}
	if w := call(full, "GET", "/metrics", rotated); w.Code != http.StatusOK {
		t.Errorf("new key after SetKeys: %d, want 200", w.Code)
	}
}
