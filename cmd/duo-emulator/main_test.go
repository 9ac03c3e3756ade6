package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

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
	for _, bad := range []map[string]string{{"n": "0"}, {"n": "x"}, {"status": "x"}, {"retry_after": "2"}, {"response": "[1]"}} {
		if _, _, err := parseFailure(bad); err == nil {
			t.Errorf("parseFailure(%v) accepted", bad)
		}
	}
}
