// Package duoconfig writes the host's providers.duo entry for the Duo
// Auth API emulator (providers/duo/duotest), as the host's tests, its
// UI's tests and the benchmarks configure Duo: one place that knows the
// entry's keys and the CA file the emulator's certificate needs.
package duoconfig

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// Options vary the entry. The zero value is Duo for staff with the
// emulator's own Auth API integration, Duo's default failmode and a 2 s
// timeout.
type Options struct {
	IKey, SKey string        // "": the emulator's integration
	Failmode   string        // "": not set, Duo's default
	Timeout    time.Duration // 0: 2 s
	Clients    bool          // Duo for clients too
}

// Entry writes the emulator's CA certificate into dir, as the file the
// entry's ca_file names, and returns the entry, indented to append to a
// config's providers section.
func Entry(emu *duotest.Server, dir string, o Options) (string, error) {
	if o.IKey == "" && o.SKey == "" {
		o.IKey, o.SKey = emu.Integration()
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	ca := filepath.Join(dir, "duo-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.Certificate().Raw}), 0o600); err != nil {
		return "", fmt.Errorf("duoconfig: writing the emulator's CA file: %w", err)
	}
	var b strings.Builder
	b.WriteString("  duo:\n    enabled: true\n    staff: true\n")
	if o.Clients {
		b.WriteString("    clients: true\n")
	}
	fmt.Fprintf(&b, `    settings:
      integration_key: %s
      secret_key: %s
      api_hostname: %s
      allow_custom_host: true
      ca_file: %s
`, o.IKey, o.SKey, emu.Host(), ca)
	if o.Failmode != "" {
		fmt.Fprintf(&b, "      failmode: %s\n", o.Failmode)
	}
	fmt.Fprintf(&b, "      timeout: %s\n", o.Timeout)
	return b.String(), nil
}
