package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestControlFail: the control API's switches reach the emulator: an
// injected 429 with X-Retry-After, a bare error, then /reset ends them.
func TestControlFail(t *testing.T) {
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ctl := httptest.NewServer(controlAPI(emu))
	defer ctl.Close()
	duo := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: emu.CertPool()}}}
	ping := func() (*http.Response, string) {
		t.Helper()
		r, err := duo.Get(emu.URL() + "/auth/v2/ping")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	control := func(path string, q url.Values) {
		t.Helper()
		r, err := http.Post(ctl.URL+path+"?"+q.Encode(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("%s %v: %s", path, q, r.Status)
		}
	}
	control("/fail", url.Values{"n": {"always"}, "status": {"429"}, "retry_after": {"2s"}, "x_retry_after": {"1"}})
	if r, _ := ping(); r.StatusCode != 429 || r.Header.Get("X-Retry-After") != "2" || r.Header.Get("Retry-After") != "" {
		t.Errorf("429 with X-Retry-After: %s %v", r.Status, r.Header)
	}
	control("/reset", nil)
	control("/fail", url.Values{"status": {"404"}, "empty": {"1"}})
	if r, body := ping(); r.StatusCode != 404 || body != "" {
		t.Errorf("bare 404: %s %q", r.Status, body)
	}
	if r, body := ping(); r.StatusCode != 200 || !strings.Contains(body, `"time"`) {
		t.Errorf("after the one failure: %s %q", r.Status, body)
	}
}

func TestParseFailure(t *testing.T) {
	n, f, err := parseFailure(map[string]string{"n": "3", "path": "/auth/v2/auth", "fail_code": "1000",
		"response": `{"result":"allow","status":"allow"}`, "delay": "1s"})
	if err != nil || n != 3 || f.FailCode != 1000 || f.Path != "/auth/v2/auth" || f.Response == nil || f.Delay.Seconds() != 1 {
		t.Errorf("parseFailure = %d %+v %v", n, f, err)
	}
	if _, f, err := parseFailure(map[string]string{"status": "403", "cut": "1"}); err != nil || !f.CutShort || f.StallBody || f.Status != 403 {
		t.Errorf("parseFailure(cut) = %+v %v", f, err)
	}
	if _, f, err := parseFailure(map[string]string{"stall": "1"}); err != nil || !f.StallBody || f.CutShort {
		t.Errorf("parseFailure(stall) = %+v %v", f, err)
	}
	for _, bad := range []map[string]string{{"n": "0"}, {"n": "x"}, {"status": "x"}, {"retry_after": "2"}, {"response": "[1]"}} {
		if _, _, err := parseFailure(bad); err == nil {
			t.Errorf("parseFailure(%v) accepted", bad)
		}
	}
}

// TestConfigBlockLoads: what the emulator prints is a config block the
// host's loader takes as it is, with every value where the Duo provider
// reads it.
func TestConfigBlockLoads(t *testing.T) {
	var block strings.Builder
	writeConfigBlock(&block, "127.0.0.1:4443", "DIABCDEFGHIJKLMNOPQR", "s3cr3t-with-\"quote", "/tmp/duo ca.pem")
	dir := t.TempDir()
	path := filepath.Join(dir, "twofactor.yaml")
	base := "encryption_key: RwdyqsyED7nqk4E7DRoslKIn6dVOucl5Q2vUR0sae20=\nstorage: {driver: sqlite, dsn: t.db}\nplugins: {dir: .}\n" +
		"api_keys:\n  - {name: panel, key: app-ELRgmGBaEnyVTawLdIA62bIFqZgQx4AzQA9jjSCANL0, scope: app}\n"
	if err := os.WriteFile(path, []byte(base+block.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Source{File: path, Environ: []string{}})
	if err != nil {
		t.Fatalf("%v\n%s", err, block.String())
	}
	want := map[string]string{"api_hostname": "127.0.0.1:4443", "integration_key": "DIABCDEFGHIJKLMNOPQR",
		"secret_key": "s3cr3t-with-\"quote", "allow_custom_host": "true", "ca_file": "/tmp/duo ca.pem"}
	if len(cfg.Providers) != 1 || cfg.Providers[0].Name != "duo" || !cfg.Providers[0].Staff || !cfg.Providers[0].Clients {
		t.Fatalf("providers = %+v", cfg.Providers)
	}
	for k, v := range want {
		if got := cfg.Providers[0].Settings[k]; got != v {
			t.Errorf("settings.%s = %q, want %q", k, got, v)
		}
	}
	if regexp.MustCompile(`(?m)^DUO_`).MatchString(block.String()) {
		t.Errorf("still prints DUO_ variables:\n%s", block.String())
	}
}

// TestControlDevice: /device gives a user a phone without Duo Mobile, a
// bad type is refused, and /sms reads what was texted (nothing yet).
func TestControlDevice(t *testing.T) {
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ctl := httptest.NewServer(controlAPI(emu))
	defer ctl.Close()
	post := func(q url.Values) (int, string) {
		t.Helper()
		r, err := http.Post(ctl.URL+"/device?"+q.Encode(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if code, body := post(url.Values{"user": {"dan"}, "type": {"phone"}, "capabilities": {"sms,phone"}}); code != 200 || !regexp.MustCompile(`"device":"D[A-Z0-9]{19}"`).MatchString(body) {
		t.Errorf("/device: %d %s", code, body)
	}
	if code, _ := post(url.Values{"user": {"dan"}, "type": {"tablet"}}); code != 400 {
		t.Errorf("/device of type tablet: %d, want 400", code)
	}
	r, err := http.Get(ctl.URL + "/sms?user=dan")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || strings.TrimSpace(string(b)) != "null" {
		t.Errorf("/sms before any text: %d %s", r.StatusCode, b)
	}
}
