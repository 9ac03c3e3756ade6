package host_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/host"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// TestVersionUnknownProtocolRefused: a plugin that offers only protocol
// version 2 (testdata/v2plugin) is refused at start, and the message names
// both the plugin's version and the one the host speaks.
func TestVersionUnknownProtocolRefused(t *testing.T) {
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "twofactor-provider-future"), "./testdata/v2plugin")
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
	var log syncBuffer
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
				t.Error("a version 2 plugin is running")
			}
			msg = p.LastError
		}
	}
	t.Logf("refusal: %s", msg)
	for _, want := range []string{"provider plugin speaks protocol version 2", "this host speaks protocol version 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if sdk.ProtocolVersion != 1 {
		t.Errorf("this test assumes the host speaks protocol version 1, not %d", sdk.ProtocolVersion)
	}
	if err == nil && !strings.Contains(log.String(), "protocol version 2") {
		t.Errorf("the host's log does not name the refusal:\n%s", log.String())
	}
	if pids := testbin.Processes(plugins); len(pids) != 0 {
		t.Errorf("refused plugin still running: %v", pids)
	}
}
