package api

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
)

// TestKeyNameIsTheCheckedKeys: a handler behind auth names the key auth
// checked, even when a reload removes or renames that key before the
// handler asks (a UI link's issuer, its audit actor): it does not look
// the key up again.
func TestKeyNameIsTheCheckedKeys(t *testing.T) {
	const token = "tfk_test_panel_key_0123456789abcdef"
	s := &Server{log: hclog.NewNullLogger()}
	s.SetKeys([]config.APIKey{{Name: "panel", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(token))}})
	for name, reload := range map[string][]config.APIKey{
		"key removed": nil,
		"key renamed": {{Name: "renamed", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(token))}},
	} {
		t.Run(name, func(t *testing.T) {
			var got string
			h := s.auth(config.ScopeApp, func(w http.ResponseWriter, r *http.Request) {
				s.SetKeys(reload) // a reload between auth and the handler's use of the name
				got = keyName(r)
			})
			r := httptest.NewRequest("POST", "/v1/users/alice/ui-links", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			h(httptest.NewRecorder(), r)
			if got != "panel" {
				t.Errorf("keyName after the reload: %q, want the key auth checked, panel", got)
			}
		})
		s.SetKeys([]config.APIKey{{Name: "panel", Scope: config.ScopeApp, Hash: sha256.Sum256([]byte(token))}})
	}
}
