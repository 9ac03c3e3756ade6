package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// forgedLine is what a plugin tries to pass off as a line of the host's
// own log (hclog's text format, the host's default).
const forgedLine = "2026-01-01T00:00:00.000Z [ERROR] twofactor: FORGED"

// signalWriter keeps what the host logs and signals when a write holds
// the marker.
type signalWriter struct {
	syncBuffer
	marker string
	once   sync.Once
	seen   chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(string(p), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// TestPluginStderrCannotForgeHostLogLines: a plugin's stderr is
// re-emitted in the host's log (go-plugin parses its hclog JSON). A
// message or a field name in it with a line break (a provider that logs a
// backend's error body, or a hostile one) must not start a line of the
// host's log of its own: in the host's default text format, that line
// would read as the host's.
func TestPluginStderrCannotForgeHostLogLines(t *testing.T) {
	good := binary(t, "good")
	// A real plugin process that writes two JSON log lines to its stderr
	// and then serves as the good provider.
	dir := shortDir(t)
	lines := []string{
		fmt.Sprintf(`{"@level":"info","@message":"MSG-VECTOR\n%s in the message","@timestamp":"2026-01-01T00:00:00.000000Z"}`, forgedLine),
		fmt.Sprintf(`{"@level":"info","@message":"KEY-VECTOR","x\n%s in a key":"v","@timestamp":"2026-01-01T00:00:00.000000Z"}`, forgedLine),
		`{"@level":"info","@message":"DONE","@timestamp":"2026-01-01T00:00:00.000000Z"}`,
	}
	script := "#!/bin/sh\n"
	for _, l := range lines {
		script += "printf '%s\\n' '" + l + "' >&2\n"
	}
	script += "exec " + good + "\n"
	bin := filepath.Join(dir, "forger")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &signalWriter{marker: "DONE", seen: make(chan struct{})}
	l := Prepare(exec.Command(bin), hclog.New(&hclog.LoggerOptions{Name: "twofactor", Output: logs, Level: hclog.Trace}))
	c := goplugin.NewClient(l.Config)
	t.Cleanup(func() { c.Kill(); l.Close() })
	if _, err := l.Dispense(c); err != nil {
		t.Fatal(err)
	}
	select {
	case <-logs.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("the plugin's last line never reached the host's log:\n%s", logs.String())
	}
	for _, vector := range []string{"MSG-VECTOR", "KEY-VECTOR"} {
		if !strings.Contains(logs.String(), vector) {
			t.Errorf("the plugin's %s line never reached the host's log", vector)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.HasPrefix(line, forgedLine) {
			t.Errorf("a plugin forged a line of the host's log: %q\nwhole log:\n%s", line, logs.String())
		}
	}
}
