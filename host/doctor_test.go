package host_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// doctorDuoConfig writes a config enabling Duo against the emulator.
func doctorDuoConfig(t *testing.T, emu *duotest.Server, ikey, skey string) string {
	t.Helper()
	return writeConfig(t, pluginCopy(t), "providers:\n"+duoSettings(t, emu, duoconfig.Options{IKey: ikey, SKey: skey}))
}

type doctorJSON struct {
	Checks []struct {
		Name, Status, Message, Fix string
	}
	OK bool
}

// doctor runs twofactor doctor twice, as text and as JSON, and checks the
// two agree on the exit code and that the JSON parses.
func doctor(t *testing.T, path string) (int, string, doctorJSON) {
	t.Helper()
	code, out, stderr := runCLI("doctor", "--config", path)
	jcode, jout, _ := runCLI("doctor", "--config", path, "--json")
	var rep doctorJSON
	if err := json.Unmarshal([]byte(jout), &rep); err != nil {
		t.Fatalf("doctor --json is not JSON: %v\n%s", err, jout)
	}
	if (code == 0) != (jcode == 0) || (code == 0) != rep.OK {
		t.Errorf("exit %d, --json exit %d, ok %v", code, jcode, rep.OK)
	}
	if code != 0 && !strings.Contains(stderr, "check(s) failed") {
		t.Errorf("stderr: %q", stderr)
	}
	return code, out, rep
}

func (r doctorJSON) check(name string) (status, message, fix string) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Message, c.Fix
		}
	}
	return "", "", ""
}

func TestDoctorHealthy(t *testing.T) {
	path := writeConfig(t, pluginCopy(t), totpClients)
	code, out, rep := doctor(t, path)
	if code != 0 || strings.Contains(out, "✘") || strings.Contains(out, "\n! ") || !strings.Contains(out, "all checks passed") {
		t.Fatalf("healthy setup: exit %d\n%s", code, out)
	}
	for _, name := range []string{"config", "storage", "encryption_key", "provider.totp.binary", "provider.totp.activate",
		"provider.totp.authenticator_compat", "audit.clock_skew"} {
		if st, msg, _ := rep.check(name); st != "ok" {
			t.Errorf("check %s: %q %q", name, st, msg)
		}
	}
	if !strings.HasPrefix(out, "✔ config: ") {
		t.Errorf("output:\n%s", out)
	}
}

func TestDoctorDuoWrongIntegrationKey(t *testing.T) {
	emu := startEmulator(t)
	_, skey := emu.Integration()
	path := doctorDuoConfig(t, emu, "DI"+strings.Repeat("A", 18), skey)
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.duo.activate")
	if code == 0 || st != "fail" || !strings.Contains(msg, "integration_key") || strings.Contains(fix, "DNS") ||
		!strings.Contains(fix, "copy the Integration key of an Auth API application (Duo Admin Panel → Applications → Protect an Application → Auth API)") ||
		!strings.Contains(fix, "providers.duo.settings.integration_key") {
		t.Errorf("wrong integration key: exit %d\n%s", code, out)
	}
	if !regexp.MustCompile(`(?m)^✘ provider\.duo\.activate: .*integration_key.*\n    fix: copy the Integration key`).MatchString(out) {
		t.Errorf("human output:\n%s", out)
	}
	_, jout, _ := runCLI("doctor", "--config", path, "--json")
	if strings.Contains(out, skey) || strings.Contains(jout, skey) {
		t.Fatal("doctor printed the Duo secret key")
	}
}

func TestDoctorDuoWrongSecretKey(t *testing.T) {
	emu := startEmulator(t)
	ikey, _ := emu.Integration()
	wrong := strings.Repeat("s", 40)
	path := doctorDuoConfig(t, emu, ikey, wrong)
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.duo.activate")
	if code == 0 || st != "fail" || !strings.Contains(msg, "secret_key") || !strings.Contains(fix, "TWOFACTOR_PROVIDERS__DUO__SETTINGS__SECRET_KEY") {
		t.Errorf("wrong secret key: exit %d\n%s", code, out)
	}
	_, jout, _ := runCLI("doctor", "--config", path, "--json")
	if strings.Contains(out, wrong) || strings.Contains(jout, wrong) {
		t.Fatal("doctor printed the secret key")
	}
}

func TestDoctorDuoClockOffset(t *testing.T) {
	emu := startEmulator(t)
	emu.SetClockOffset(90 * time.Second)
	ikey, skey := emu.Integration()
	path := doctorDuoConfig(t, emu, ikey, skey)
	// The provider reports the offset as a warning with its fix: logins
	// work (requests are signed with Duo's time), the clock should still
	// be synced.
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.duo.clock_offset")
	if code != 0 || st != "warn" || !regexp.MustCompile(`\b(89|90|91)s off Duo's`).MatchString(msg) || !strings.Contains(fix, "NTP") {
		t.Errorf("90 s offset: exit %d\n%s", code, out)
	}
	if st, _, _ := rep.check("provider.duo.activate"); st != "ok" {
		t.Errorf("activate with a drifted clock should pass:\n%s", out)
	}
	if strings.Contains(out, skey) {
		t.Fatal("doctor printed the Duo secret key")
	}

	// A small offset is fine.
	emu.SetClockOffset(5 * time.Second)
	if code, out, rep := doctor(t, path); code != 0 || func() bool { st, _, _ := rep.check("provider.duo.clock_offset"); return st != "ok" }() {
		t.Errorf("5 s offset: exit %d\n%s", code, out)
	}
}

func TestDoctorMissingBinary(t *testing.T) {
	plugins := pluginCopy(t)
	bin := filepath.Join(plugins, "twofactor-provider-totp")
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, plugins, totpClients)
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.totp.binary")
	if code == 0 || st != "fail" || !strings.Contains(msg, bin) || !strings.Contains(fix, "plugins.dir") {
		t.Errorf("missing binary: exit %d\n%s", code, out)
	}
	if rep.OK {
		t.Error("--json says ok")
	}
	// The settings' advice is the provider's own: without its binary
	// there is none, and the host makes up none.
	if st, _, _ := rep.check("provider.totp.authenticator_compat"); st != "" {
		t.Errorf("advice without the provider:\n%s", out)
	}
}

func TestDoctorTamperedPin(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	_, dout, _ := runCLI("digest", "--config", path, "totp")
	pin := dout[:64]
	path = writeConfig(t, plugins, strings.Replace(totpClients, "    enabled: true", "    enabled: true\n    sha256: "+pin, 1))
	if code, out, _ := doctor(t, path); code != 0 {
		t.Fatalf("pinned binary: exit %d\n%s", code, out)
	}
	f, err := os.OpenFile(filepath.Join(plugins, "twofactor-provider-totp"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	_, dout, _ = runCLI("digest", "--config", path, "totp")
	actual := dout[:64]
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.totp.pin")
	if code == 0 || st != "fail" || !strings.Contains(msg, "expected sha256 "+pin) || !strings.Contains(msg, "actual "+actual) ||
		!strings.Contains(fix, "twofactor digest") {
		t.Errorf("tampered binary: exit %d\n%s", code, out)
	}
}

func TestDoctorTOTPSettingsAppsIgnore(t *testing.T) {
	path := writeConfig(t, pluginCopy(t), strings.Replace(totpClients, "{issuer: ACME Billing}",
		"{issuer: ACME Billing, digits: 8, algorithm: SHA256}", 1))
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("provider.totp.authenticator_compat")
	if code != 0 || st != "warn" || !strings.Contains(msg, "digits 8") || !strings.Contains(msg, "algorithm SHA256") ||
		!strings.Contains(msg, "Google Authenticator and Microsoft Authenticator") || !strings.Contains(fix, "digits: 6") {
		t.Errorf("digits 8: exit %d (a warning passes)\n%s", code, out)
	}
	if !regexp.MustCompile(`(?m)^! provider\.totp\.authenticator_compat: .*\n    fix: set `).MatchString(out) || !strings.Contains(out, "no failures, 1 warning(s)") {
		t.Errorf("human output:\n%s", out)
	}
}

func TestDoctorEncryptionKey(t *testing.T) {
	plugins := pluginCopy(t)
	path := writeConfig(t, plugins, totpClients)
	text, _ := os.ReadFile(path)

	// A placeholder key: config fails, naming the key and how to make one.
	placeholder := strings.Replace(string(text), "RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=", strings.Repeat("A", 43)+"=", 1)
	os.WriteFile(path, []byte(placeholder), 0o600)
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("encryption_key")
	if code == 0 || st != "fail" || !strings.Contains(msg, "placeholder") || !strings.Contains(fix, "head -c 32 /dev/urandom | base64") {
		t.Errorf("placeholder key: exit %d\n%s", code, out)
	}

	// A real key, but not the one the database was made with.
	os.WriteFile(path, text, 0o600)
	if code, out, _ := doctor(t, path); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	other := strings.Replace(string(text), "RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=", "9dePX4oslHBN1q6B0honaF5scPdVNFLWBnkEEQO99XQ=", 1)
	os.WriteFile(path, []byte(other), 0o600)
	code, out, rep = doctor(t, path)
	st, msg, fix = rep.check("encryption_key")
	if code == 0 || st != "fail" || !strings.Contains(msg, "cannot decrypt") || !strings.Contains(fix, "previous_encryption_keys") {
		t.Errorf("wrong key: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "9dePX4oslHBN1q6B0honaF5scPdVNFLWBnkEEQO99XQ=") || strings.Contains(out, "RwdyqsyED7nqk4E7") {
		t.Error("doctor printed an encryption key")
	}
}

func TestDoctorBadConfig(t *testing.T) {
	path := writeConfig(t, pluginCopy(t), totpClients+"    colour: blue\n")
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("config")
	if code == 0 || st != "fail" || !strings.Contains(msg, "providers.totp.colour") || !strings.Contains(fix, "providers.totp.colour") {
		t.Errorf("unknown key: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI("doctor"); code == 0 || !strings.Contains(out, "--config") {
		t.Errorf("no --config: exit %d\n%s", code, out)
	}
}

// TestDoctorConfigFileMode: a config readable by others while it holds the
// keys inline (what configs written 0644 before this check look like), or
// in a folder others can write, fails doctor's config check with the one
// command that fixes it; serve refuses the same file with the same fix.
func TestDoctorConfigFileMode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		folder bool // open the folder, not the file
		mode   os.FileMode
		want   string
		fix    string
	}{
		{"0644 with the keys inline", false, 0o644, "readable by group or others (mode 0644)", "chmod 600 "},
		{"folder 0777", true, 0o777, "writable by group or others (mode 0777)", "chmod go-w "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, pluginCopy(t), totpClients)
			at := path
			if tc.folder {
				at = filepath.Dir(path)
			}
			if err := os.Chmod(at, tc.mode); err != nil {
				t.Fatal(err)
			}
			code, out, rep := doctor(t, path)
			st, msg, fix := rep.check("config")
			if code == 0 || st != "fail" || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "serve refuses") ||
				!strings.HasPrefix(fix, tc.fix+at) {
				t.Errorf("exit %d, config check %q %q fix %q\n%s", code, st, msg, fix, out)
			}
			if !strings.Contains(out, "fix: "+tc.fix+at) {
				t.Errorf("output:\n%s", out)
			}
			// serve refuses it at once; one that served would block, so it
			// is given 30 s.
			served := make(chan string, 1)
			go func() {
				code, _, stderr := runCLI("serve", "--config", path, "--listen", "127.0.0.1:0")
				served <- fmt.Sprintf("exit %d, %s", code, stderr)
			}()
			select {
			case got := <-served:
				if !strings.HasPrefix(got, "exit 1,") || !strings.Contains(got, "fix: "+tc.fix+at) {
					t.Errorf("serve: %s", got)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("serve accepted %s (still serving after 30 s)", path)
			}
		})
	}
}

// TestDoctorConfigWithoutNewline: a config that does not end with a
// newline serves, but every live reload of it is refused as possibly cut
// short; doctor warns and says how to fix it.
func TestDoctorConfigWithoutNewline(t *testing.T) {
	path := writeConfig(t, pluginCopy(t), strings.TrimSuffix(totpClients, "\n"))
	code, out, rep := doctor(t, path)
	st, msg, fix := rep.check("config")
	if code != 0 || st != "warn" || !strings.Contains(msg, "does not end with a newline") || fix != "end "+path+" with a newline" {
		t.Errorf("config without a final newline: exit %d\n%s", code, out)
	}
}
