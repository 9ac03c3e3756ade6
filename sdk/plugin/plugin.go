// Package plugin is the host's side of the provider wire: it starts a
// provider binary as go-plugin does (ClientConfig), connects to it
// (Dispense) and returns an sdk.Provider whose calls cross the wire;
// Prepare and Launch.Dispense do the same and also set up Verify's side
// channel (a unix socket, package sdk/internal/fastpath). A
// provider author never imports it: sdk.Serve is the provider's side. The
// conformance kit (sdk/providertest) uses it to drive a binary exactly as
// the host does.
package plugin

import (
	"fmt"
	"os/exec"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/sdk"
	"github.com/twofactor/twofactor/sdk/internal/wire"
)

// Handshake is the go-plugin handshake every provider binary answers. A
// test plugin that serves its own plugin sets (a protocol from the future)
// uses it to get past the cookie.
var Handshake = wire.Handshake

// Name is the plugin name in every version's plugin set.
const Name = wire.PluginName

// Negotiated returns the wire protocol version a plugin-backed Provider
// (from Dispense) negotiated with its plugin, or 0 for a Provider in this
// process. It is the only protocol version that counts: go-plugin picked
// it from the versions both sides offer.
func Negotiated(p sdk.Provider) int {
	if c, ok := p.(*client); ok {
		return c.version
	}
	return 0
}

// ClientConfig returns the go-plugin configuration a host uses to start the
// provider binary cmd: the SDK's handshake and protocol versions, gRPC
// only (with the SDK's transport settings, wire.DialOptions), and mutual
// TLS generated per process; the plugin's log lines reach logger with
// their control characters escaped (pluginLogger). The caller may add a
// SecureConfig (to pin the binary's SHA-256) before calling
// goplugin.NewClient.
func ClientConfig(cmd *exec.Cmd, logger hclog.Logger) *goplugin.ClientConfig {
	if logger != nil { // nil: go-plugin's default logger
		logger = pluginLogger{logger}
	}
	return &goplugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.Sets(nil, newClient),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     15 * time.Second,
		GRPCDialOptions:  wire.DialOptions(),
	}
}

// offeredVersion finds the plugin's version in go-plugin's refusal of a
// plugin whose protocol versions the host does not speak ("incompatible API
// version with plugin. Plugin version: 2, Client versions: [1]").
var offeredVersion = regexp.MustCompile(`Plugin version: (\d+)`)

// Dispense completes the connection to a started plugin and returns the
// Provider it serves. It fails if the plugin negotiated a protocol version
// this host does not speak, with an error naming both versions.
func Dispense(c *goplugin.Client) (sdk.Provider, error) {
	rpc, err := c.Client()
	if err != nil {
		if m := offeredVersion.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("provider plugin speaks protocol version %s; this host speaks %s "+
				"(build the provider with an SDK that serves one of them): %w", m[1], hostVersions(), err)
		}
		return nil, fmt.Errorf("connect to provider plugin: %w", err)
	}
	if v := c.NegotiatedVersion(); v < sdk.MinProtocolVersion || v > sdk.ProtocolVersion {
		return nil, fmt.Errorf("provider plugin speaks protocol version %d; this host speaks %s", v, hostVersions())
	}
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense provider plugin: %w", err)
	}
	p, ok := raw.(sdk.Provider)
	if !ok {
		return nil, fmt.Errorf("provider plugin returned %T, not a Provider", raw)
	}
	return p, nil
}

// hostVersions names the protocol versions this host speaks, for errors.
func hostVersions() string {
	if sdk.MinProtocolVersion == sdk.ProtocolVersion {
		return fmt.Sprintf("protocol version %d", sdk.ProtocolVersion)
	}
	return fmt.Sprintf("protocol versions %d to %d", sdk.MinProtocolVersion, sdk.ProtocolVersion)
}
