package duo

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/sdk"
	sdkplugin "github.com/twofactor/twofactor/sdk/plugin"
)

// TestPluginBinary runs the real twofactor-provider-duo binary as a plugin
// against the emulator: the contract, typed errors and the secret key's
// absence hold across the wire.
func TestPluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "twofactor-provider-duo")
	build := exec.Command("go", "build", "-o", bin, "github.com/twofactor/twofactor/cmd/twofactor-provider-duo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := newEnv(t)
	logs := &syncbuf.Buffer{}
	pc := plugin.NewClient(sdkplugin.ClientConfig(exec.Command(bin), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})))
	t.Cleanup(pc.Kill)
	p, err := sdkplugin.Dispense(pc)
	if err != nil {
		t.Fatal(err)
	}

	info, err := p.Info(ctx)
	if err != nil || info.Name != "duo" || !info.Capabilities.Push || !info.Capabilities.Code {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	// A wrong secret key: the typed error crosses the wire, without the key.
	wrong := strings.Repeat("w", 40)
	if err := p.Configure(ctx, e.settings(sdk.Settings{"secret_key": wrong})); err != nil {
		t.Fatal(err)
	}
	_, err = p.Activate(ctx)
	wantKind(t, err, sdk.KindInvalidCredentials, "secret_key")
	if strings.Contains(err.Error(), wrong) {
		t.Error("error leaks the secret key")
	}

	if err := p.Configure(ctx, e.settings(nil)); err != nil {
		t.Fatal(err)
	}
	e.emu.SetClockOffset(90e9)
	a, err := p.Activate(ctx)
	if err != nil || a.Health != sdk.Degraded || !near(a.Diagnostics[0].Value, "90s") {
		t.Fatalf("Activate = %+v, %v", a, err)
	}

	// Enroll a new user, then a passcode and a push.
	u := sdk.User{ID: "pat"}
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollBegin})
	if err != nil || begin.Display.ActivationCode == "" {
		t.Fatalf("begin = %+v, %v", begin, err)
	}
	if err := e.emu.ActivateEnrollment(begin.Display.ActivationCode); err != nil {
		t.Fatal(err)
	}
	fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollFinish, State: begin.State})
	if err != nil || !fin.Done {
		t.Fatalf("finish = %+v, %v", fin, err)
	}
	e.emu.AddPasscode(u.ID, "314159")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: fin.State, Code: "314159"})
	wantOutcome(t, r, err, sdk.Allow, "")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: fin.State, Code: "314159"})
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonInvalidCode)
	e.emu.ScriptPush(u.ID, pushAllow)
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: fin.State, Factor: "push"})
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: fin.State, TxID: r.TxID})
	wantOutcome(t, r, err, sdk.Allow, "")

	pc.Kill()
	for _, secret := range []string{e.skey, wrong} {
		if strings.Contains(logs.String(), secret) {
			t.Error("the plugin's logs contain a secret key")
		}
	}
	if !strings.Contains(logs.String(), "configured") {
		t.Error("the plugin's log lines did not reach the host logger")
	}
}
