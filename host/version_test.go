package host_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// TestVersionUnknownProtocolRefused: a plugin that offers only a protocol
// version newer than the host's (testdata/futureplugin) is refused at
// start, and the message names both the plugin's version and the ones the
// host speaks.
func TestVersionUnknownProtocolRefused(t *testing.T) {
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "twofactor-provider-future"), "./testdata/futureplugin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg, err := config.Load(config.Source{
		File:    writeConfig(t, plugins, "providers:\n  future: {enabled: true, clients: true}\n"),
		Environ: []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	var log syncbuf.Buffer
	svc, err := host.Open(context.Background(), cfg, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Error}))
	// framework.New may refuse the provider outright or keep running
	// with it down; either way the refusal must say why.
	var msg string
	if err != nil {
		msg = err.Error()
	} else {
		defer svc.Close()
		for _, p := range svc.Framework.Providers() {
			if p.Name != "future" {
				continue
			}
			if p.Running {
				t.Error("a plugin from a future protocol version is running")
			}
			msg = p.LastError
		}
	}
	t.Logf("refusal: %s", msg)
	future := fmt.Sprintf("provider plugin speaks protocol version %d", sdk.ProtocolVersion+1)
	ours := fmt.Sprintf("this host speaks protocol versions %d to %d", sdk.MinProtocolVersion, sdk.ProtocolVersion)
	for _, want := range []string{future, ours} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if err == nil && !strings.Contains(log.String(), future) {
		t.Errorf("the host's log does not name the refusal:\n%s", log.String())
	}
	if pids := testbin.Processes(plugins); len(pids) != 0 {
		t.Errorf("refused plugin still running: %v", pids)
	}
}

// TestVersionV1AndV2PluginsServedTogether: one host runs a plugin built
// from the released protocol 1 wire (testdata/v1plugin, which does not
// import the SDK) beside the TOTP plugin built with this SDK, which
// negotiates protocol 2. Both enroll, confirm and verify through the API,
// and a Challenge never reaches the protocol 1 plugin.
func TestVersionV1AndV2PluginsServedTogether(t *testing.T) {
	plugins := pluginCopy(t)
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "twofactor-provider-legacy"), "./testdata/v1plugin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	chmodGoW(t, plugins)
	h := startHostIn(t, plugins, totpClients+"  legacy: {enabled: true, clients: true}\n",
		hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))

	want := map[string]int{"totp": sdk.ProtocolVersion, "legacy": 1}
	for _, st := range h.svc.Framework.Providers() {
		if v, ok := want[st.Name]; ok {
			if !st.Running || st.Protocol != v {
				t.Errorf("provider %s: running %v, protocol %d; want running, protocol %d (%s)", st.Name, st.Running, st.Protocol, v, st.LastError)
			}
			delete(want, st.Name)
		}
	}
	if len(want) != 0 {
		t.Fatalf("providers not served: %v", want)
	}

	secret := h.enroll("alice")   // TOTP over protocol 2
	h.clock.Add(30 * time.Second) // the confirmation code is spent
	if r := h.verify("alice", h.code(secret)); r.status != http.StatusOK || r.str("outcome") != "allow" {
		t.Errorf("TOTP verify over protocol 2: %d %v", r.status, r.body)
	}

	r := h.do("POST", "/v1/users/carol/enrollments", appKey, map[string]string{"provider": "legacy", "audience": "client"})
	display, _ := r.body["display"].(map[string]any)
	pin, _ := display["activation_code"].(string)
	if r.status != http.StatusCreated || len(pin) != 6 {
		t.Fatalf("legacy enroll: %d %v", r.status, r.body)
	}
	if c := h.do("POST", "/v1/users/carol/enrollments/legacy/confirm", appKey, map[string]string{"code": pin}); c.status != http.StatusOK || c.str("status") != "active" {
		t.Fatalf("legacy confirm: %d %v", c.status, c.body)
	}
	for _, tc := range []struct{ code, outcome string }{{"000000x", "deny"}, {pin, "allow"}} {
		v := h.do("POST", "/v1/users/carol/verify", appKey, map[string]string{"provider": "legacy", "audience": "client", "code": tc.code})
		if v.status != http.StatusOK || v.str("outcome") != tc.outcome {
			t.Errorf("legacy verify %q: %d %v, want %s", tc.code, v.status, v.body, tc.outcome)
		}
	}
}
