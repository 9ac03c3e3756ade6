package duo

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/sdk"
)

// TestActivatePingRefusedIsNotBlamedOnTheKeys: the API hostname leads to
// a server that answers every request, the unsigned /auth/v2/ping too,
// with a 401 or a 403 (a TLS-inspecting proxy's block page, a front end
// asking for its own login). The ping carries no credentials, so its
// refusal cannot be about the integration key, the secret key or the
// application type, nor be a clock that re-signing failed to fix: the
// diagnosis names api_hostname.
func TestActivatePingRefusedIsNotBlamedOnTheKeys(t *testing.T) {
	for _, tc := range []struct {
		status int
		ctype  string
		body   string
	}{
		{http.StatusForbidden, "text/html", "<html><head><title>403 Forbidden</title></head><body>Blocked by policy</body></html>"},
		{http.StatusUnauthorized, "text/html", "<html><body>Authentication required</body></html>"},
		{http.StatusForbidden, "text/plain", ""},
	} {
		t.Run(fmt.Sprintf("%d %s %d bytes", tc.status, tc.ctype, len(tc.body)), func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			srv.StartTLS()
			defer srv.Close()
			if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
				t.Fatalf("listening on %s", srv.Listener.Addr())
			}
			e := &env{t: t, logs: &syncbuf.Buffer{}}
			p := New(WithLogger(e.logger()))
			if err := p.Configure(ctx, sdk.Settings{
				"integration_key":   "DIWJ8X6AEYOR5OMC6TQ1",
				"secret_key":        "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
				"api_hostname":      srv.Listener.Addr().String(),
				"allow_custom_host": "true",
				"ca_file":           writeCA(t, srv.Certificate().Raw),
			}); err != nil {
				t.Fatal(err)
			}
			_, err := p.Activate(ctx)
			mu.Lock()
			defer mu.Unlock()
			if len(paths) != 1 || paths[0] != "/auth/v2/ping" {
				t.Fatalf("requests = %v, want the ping alone", paths)
			}
			se := wantKind(t, err, sdk.KindInvalidCredentials, "api_hostname")
			for _, wrong := range []string{"another kind of Duo application", "re-signed", "candidates"} {
				if strings.Contains(se.Message, wrong) {
					t.Errorf("message = %q: blames the keys for the refusal of a request that carried none", se.Message)
				}
			}
		})
	}
}
