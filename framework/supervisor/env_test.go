package supervisor_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework/config"
)

// TestPluginEnvCarriesNoHostConfig: the host's configuration may come from
// its environment (the README: TWOFACTOR_ENCRYPTION_KEY, the API keys,
// Duo's secret key); a plugin process, here the TOTP plugin standing for
// any third party's, is started without any of it, and with the rest of
// the host's environment (a proxy, CA roots) and the plugin defaults.
// go-plugin appended the host's whole environment before.
func TestPluginEnvCarriesNoHostConfig(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc: the plugin's environment cannot be read here")
	}
	hidden := map[string]string{
		config.EnvPrefix + "ENCRYPTION_KEY":                       "hidden-encryption-key-0123456789abcdef",
		config.EnvPrefix + "PROVIDERS__DUO__SETTINGS__SECRET_KEY": "hidden-duo-skey-0123456789abcdefghijkl",
		config.EnvPrefix + "API_KEYS__0__KEY":                     "hidden-api-key-tf_admin_zzzzzzzzzzzzz",
	}
	kept := map[string]string{"HTTPS_PROXY": "http://proxy.example:3128", "SSL_CERT_FILE": "/etc/ssl/certs/kept.pem"}
	for k, v := range hidden {
		t.Setenv(k, v)
	}
	for k, v := range kept {
		t.Setenv(k, v)
	}
	_, pid := startTOTP(t, totpCopy(t))
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(raw), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for k, v := range hidden {
		if strings.Contains(string(raw), v) {
			t.Errorf("the plugin was started with the host's %s", k)
		}
	}
	for k, v := range kept {
		if env[k] != v {
			t.Errorf("%s = %q in the plugin, want the host's %q", k, env[k], v)
		}
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && env["GOMAXPROCS"] != "1" {
		t.Errorf("GOMAXPROCS = %q in the plugin, want the plugin default 1", env["GOMAXPROCS"])
	}
	if env["PLUGIN_PROTOCOL_VERSIONS"] == "" {
		t.Errorf("go-plugin's handshake variables are missing: %q", raw)
	}
}
