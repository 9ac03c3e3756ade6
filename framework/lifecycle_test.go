//go:build linux

package framework_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/sdk"
)

// These tests start real plugin processes from private copies of the
// binary, so that a process found in a copy's directory is this test's.
// None of them runs in parallel (see copyPlugin).

// pluginPids returns the live processes running the executable named name
// from dir.
func pluginPids(dir, name string) []int {
	var pids []int
	for _, pid := range testbin.Processes(dir) {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

func onePid(t *testing.T, dir, name string) int {
	t.Helper()
	pids := pluginPids(dir, name)
	if len(pids) != 1 {
		t.Fatalf("processes of %s in %s = %v, want exactly one", name, dir, pids)
	}
	return pids[0]
}

func lastDigitOff(pin string) string {
	if pin[len(pin)-1] == '0' {
		return pin[:len(pin)-1] + "1"
	}
	return pin[:len(pin)-1] + "0"
}

func status(t *testing.T, fw *framework.Framework) framework.ProviderStatus {
	t.Helper()
	st := fw.Providers()
	if len(st) != 1 {
		t.Fatalf("Providers() = %+v, want one", st)
	}
	return st[0]
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, framework.BinaryPrefix+"good")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, framework.BinaryPrefix+"plain"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, framework.BinaryPrefix+"folder"), 0o755); err != nil {
		t.Fatal(err)
	}

	got, err := framework.FindBinary(dir, "good")
	if err != nil || got != exe {
		t.Fatalf("FindBinary(good) = %q, %v; want %q", got, err, exe)
	}

	tests := []struct {
		name, provider, wantMsg string
	}{
		{"missing", "nope", "no plugin binary at"},
		{"not executable", "plain", "is not an executable file"},
		{"directory", "folder", "is not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := framework.FindBinary(dir, tt.provider)
			if err == nil {
				t.Fatal("found")
			}
			full := filepath.Join(dir, framework.BinaryPrefix+tt.provider)
			if !strings.Contains(err.Error(), full) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not name %s and say %q", err, full, tt.wantMsg)
			}
		})
	}
	t.Run("relative dir is reported absolute", func(t *testing.T) {
		t.Chdir(dir)
		_, err := framework.FindBinary(".", "nope")
		full := filepath.Join(dir, framework.BinaryPrefix+"nope")
		if err == nil || !strings.Contains(err.Error(), full) {
			t.Fatalf("error %v does not name %s", err, full)
		}
	})
}

func TestRefusedSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings sdk.Settings
		field    string
	}{
		{"missing issuer", sdk.Settings{}, "issuer"},
		{"empty issuer", sdk.Settings{"issuer": ""}, "issuer"},
		{"issuer with colon", sdk.Settings{"issuer": "Acme:Billing"}, "issuer"},
		{"digits 7", sdk.Settings{"issuer": "Acme", "digits": "7"}, "digits"},
		{"digits not a number", sdk.Settings{"issuer": "Acme", "digits": "six"}, "digits"},
		{"period too short", sdk.Settings{"issuer": "Acme", "period": "5"}, "period"},
		{"unknown algorithm", sdk.Settings{"issuer": "Acme", "algorithm": "MD5"}, "algorithm"},
	}
	for _, mode := range []string{"in-process", "plugin"} {
		t.Run(mode, func(t *testing.T) {
			var bin string
			if mode == "plugin" {
				bin = copyPlugin(t, totpBinaryName)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					spec := inProcess()
					if mode == "plugin" {
						spec = asPlugin(bin)
					}
					spec.Settings = tt.settings
					store, _ := openStore(t)
					fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: []framework.ProviderSpec{spec}})
					if err == nil {
						fw.Close()
						t.Fatal("New accepted the settings")
					}
					var pe *framework.ProviderError
					if !errors.As(err, &pe) || pe.Provider != "totp" {
						t.Fatalf("error %v (%T) is not a *ProviderError for totp", err, err)
					}
					var se *sdk.Error
					if !errors.As(err, &se) || se.Kind != sdk.KindInvalidSettings || se.Field != tt.field {
						t.Fatalf("error chain %v has *sdk.Error %+v, want kind %s field %q", err, se, sdk.KindInvalidSettings, tt.field)
					}
					if !errors.Is(err, &sdk.Error{Kind: sdk.KindInvalidSettings, Field: tt.field}) {
						t.Fatalf("errors.Is(%v, invalid_settings/%s) is false", err, tt.field)
					}
					if mode == "plugin" {
						if pids := testbin.Processes(filepath.Dir(bin)); len(pids) != 0 {
							t.Fatalf("refused plugin left processes %v", pids)
						}
					}
				})
			}
		})
	}
}

// TestPluginCrash kills the plugin behind the framework's back: the next
// calls restart it, and no enrollment is lost.
func TestPluginCrash(t *testing.T) {
	bin := copyPlugin(t, totpBinaryName)
	dir := filepath.Dir(bin)
	e := newEnv(t, asPlugin(bin))
	ctx := t.Context()
	secret := e.enroll(t, "alice")
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")

	pid := onePid(t, dir, totpBinaryName)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := testbin.WaitExit(pid); err != nil {
		t.Fatal(err)
	}

	// The call that finds the plugin dead restarts it and retries once;
	// if the restart fails, it says so as unavailable.
	code := codeAt(t, secret, e.clk.Advance(period))
	res, err := e.fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: code})
	switch {
	case err == nil:
		if res.Outcome != sdk.Allow {
			t.Fatalf("first verify after the crash = %+v, want allow", res)
		}
	case framework.CodeOf(err) == framework.CodeProviderUnavailable:
		t.Logf("first verify after the crash: %v", err)
	default:
		t.Fatalf("first verify after the crash: %v", err)
	}
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")

	st := status(t, e.fw)
	if st.Restarts < 1 || !st.Running || st.Health != sdk.Healthy {
		t.Fatalf("status after the crash = %+v, want running and healthy with a restart", st)
	}
	if newPid := onePid(t, dir, totpBinaryName); newPid == pid {
		t.Fatalf("plugin pid %d unchanged", pid)
	}
	list, err := e.fw.Enrollments(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].Status != framework.StatusActive || !list[0].ConfirmedAt.Equal(start) {
		t.Fatalf("Enrollments after the crash = %+v, %v", list, err)
	}
	// The state written before the crash is still in force: an old code
	// is still refused as used.
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Now()), sdk.Deny, sdk.ReasonReplayed)
}

func TestCloseStopsPlugins(t *testing.T) {
	bin := copyPlugin(t, totpBinaryName)
	dir := filepath.Dir(bin)
	store, _ := openStore(t)
	fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: []framework.ProviderSpec{asPlugin(bin)}, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	onePid(t, dir, totpBinaryName)
	if err := fw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if pids := testbin.Processes(dir); len(pids) != 0 {
		t.Fatalf("processes left after Close: %v", pids)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A closed framework does not start the plugin again.
	_, err = fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff})
	wantCode(t, err, framework.CodeProviderUnavailable)
	if pids := testbin.Processes(dir); len(pids) != 0 {
		t.Fatalf("a call after Close started %v", pids)
	}
	if st := status(t, fw); st.Running {
		t.Fatalf("status after Close = %+v", st)
	}
}

func TestPinnedChecksum(t *testing.T) {
	bin := copyPlugin(t, totpBinaryName)
	dir := filepath.Dir(bin)
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	good := hex.EncodeToString(sum[:])
	other := sha256.Sum256([]byte("some other binary"))

	store, _ := openStore(t)
	key, clk := newKey(t), newClock()
	pinned := func(pin string) framework.ProviderSpec {
		s := asPlugin(bin)
		s.SHA256 = pin
		return s
	}

	// Enroll with the right pin, so that later verifies reach the provider.
	fw := startFramework(t, store, key, clk, 0, pinned(good))
	e := &env{fw: fw, clk: clk, store: store, key: key}
	secret := e.enroll(t, "alice")
	fw.Close()

	tests := []struct {
		name    string
		pin     string
		wantErr string // in LastError; "" when the pin is right
	}{
		{"correct", good, ""},
		{"correct upper-case", strings.ToUpper(good), ""},
		// The message names both digests, so the admin can compare.
		{"wrong", hex.EncodeToString(other[:]), "expected sha256 " + hex.EncodeToString(other[:]) + ", actual " + good},
		{"last digit off", lastDigitOff(good), "expected sha256 " + lastDigitOff(good) + ", actual " + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// New never fails on a pin: the host keeps running and the
			// provider stays unavailable.
			e.fw = startFramework(t, store, key, clk, 0, pinned(tt.pin))
			defer e.fw.Close()
			code := codeAt(t, secret, clk.Advance(period))
			if tt.wantErr == "" {
				if st := status(t, e.fw); !st.Running || st.LastError != "" {
					t.Fatalf("status = %+v", st)
				}
				e.wantVerify(t, "alice", code, sdk.Allow, "")
				return
			}
			st := status(t, e.fw)
			if st.Running || st.Health != sdk.Unhealthy || !strings.Contains(st.LastError, tt.wantErr) {
				t.Fatalf("status = %+v, want not running with an error about %q", st, tt.wantErr)
			}
			for range 2 { // the second one is after the restart backoff
				_, err := e.fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: code})
				wantCode(t, err, framework.CodeProviderUnavailable)
				clk.Advance(period)
			}
			if st := status(t, e.fw); st.Running || st.Restarts < 1 || !strings.Contains(st.LastError, tt.wantErr) {
				t.Fatalf("status after retries = %+v", st)
			}
			if pids := testbin.Processes(dir); len(pids) != 0 {
				t.Fatalf("a refused binary is running: %v", pids)
			}
		})
	}
}

// TestWrongProviderBinary names a copy of the TOTP plugin after another
// provider: the host must refuse to run it as that provider.
func TestWrongProviderBinary(t *testing.T) {
	name := framework.BinaryPrefix + "other"
	copied := copyPlugin(t, name)
	dir := filepath.Dir(copied)
	bin, err := framework.FindBinary(dir, "other")
	if err != nil || bin != copied {
		t.Fatalf("FindBinary = %q, %v", bin, err)
	}
	store, _ := openStore(t)
	spec := framework.ProviderSpec{Name: "other", Staff: true, Settings: totpSettings, Binary: bin}
	fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: []framework.ProviderSpec{spec}})
	if err == nil {
		fw.Close()
		t.Fatal("New ran the totp binary as provider other")
	}
	var pe *framework.ProviderError
	if !errors.As(err, &pe) || pe.Provider != "other" {
		t.Fatalf("error %v (%T) is not a *ProviderError for other", err, err)
	}
	if !strings.Contains(err.Error(), `it says it is provider "totp"`) {
		t.Fatalf("error %q does not say which provider the binary is", err)
	}
	if pids := pluginPids(dir, name); len(pids) != 0 {
		t.Fatalf("the refused binary is still running: %v", pids)
	}
	// With several providers, the refusal still stops the ones started
	// before it.
	good := copyPlugin(t, totpBinaryName)
	specs := []framework.ProviderSpec{asPlugin(good), spec}
	if fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: specs}); err == nil {
		fw.Close()
		t.Fatal("New accepted the wrong binary beside a good one")
	}
	if pids := slices.Concat(testbin.Processes(filepath.Dir(good)), testbin.Processes(dir)); len(pids) != 0 {
		t.Fatalf("processes left after New failed: %v", pids)
	}
}

// TestNewRefusesPermanentMistakes: a malformed pin or a missing binary will
// not heal by retrying, so New refuses them, naming what is wrong.
func TestNewRefusesPermanentMistakes(t *testing.T) {
	bin := copyPlugin(t, framework.BinaryPrefix+"totp")
	missing := filepath.Join(t.TempDir(), framework.BinaryPrefix+"totp")
	tests := []struct {
		name    string
		spec    framework.ProviderSpec
		wantErr string
	}{
		{"truncated pin", framework.ProviderSpec{Name: "totp", Staff: true, Binary: bin, SHA256: strings.Repeat("a", 62)}, "64 hex digits"},
		{"pin not hex", framework.ProviderSpec{Name: "totp", Staff: true, Binary: bin, SHA256: strings.Repeat("zz", 32)}, "64 hex digits"},
		{"missing binary", framework.ProviderSpec{Name: "totp", Staff: true, Binary: missing}, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := openStore(t)
			tt.spec.Settings = sdk.Settings{"issuer": "ACME"}
			fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Providers: []framework.ProviderSpec{tt.spec}})
			if err == nil {
				fw.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want mention of %q", err, tt.wantErr)
			}
		})
	}
}
