package host_test

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/testbin"
)

// TestClientDisconnectMidVerify (issue 14, acceptance 6): a client that
// gives up while its verify is at the provider (here: the plugin is
// stopped, then continued after the client left) does not take the
// decision's audit entry, or its attempt, with it.
func TestClientDisconnectMidVerify(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	pid := testbin.OnlyProcess(t, h.pluginsDir)
	testbin.Stop(t, pid) // returns once the kernel shows it stopped; continued at cleanup
	h.clock.Add(30 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	body := `{"provider":"totp","audience":"client","code":"` + wrongTOTP(t, secret, h.clock.Now()) + `"}`
	req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/v1/users/alice/verify", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+appKey)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the verify answered %d while its plugin was stopped", res.StatusCode)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := h.do("GET", "/v1/audit?user=alice&limit=1000", adminKey, nil)
		entries, _ := a.body["entries"].([]any)
		var last map[string]any
		for _, e := range entries {
			if m := e.(map[string]any); m["event"] == "verify" {
				last = m
			}
		}
		if last != nil {
			// The provider's decision, or (if the host gave up on the
			// stopped plugin first) the error; either way it is there.
			if last["reason"] != "invalid_code" && last["outcome"] != "error" {
				t.Errorf("audited verify = %v", last)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verify in the audit log 15 s after the client left: %v", a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
