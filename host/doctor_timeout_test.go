package host_test

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// slowRelay forwards every connection to addr after holding it for delay
// first: an SMTP server that greets late.
func slowRelay(t *testing.T, addr string, delay time.Duration) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay) // the fault: a late greeting
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDoctorUsesProviderTimeout: providers.NAME.timeout bounds the
// host's calls to the provider, Activate included (a provider without a
// backend timeout of its own gets the shorter of it and 2 s). The doctor
// started the providers without it, so it judged Activate by the 2 s
// default: an SMTP server answering in 0.5 s passed the doctor's
// "Activate passed" while serve, with timeout: 200ms, had the email
// provider's Activate miss its deadline. The doctor now checks what
// serve will run.
func TestDoctorUsesProviderTimeout(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
	plugins := testbin.Copy(t, "twofactor-provider-email")
	chmodGoW(t, plugins)
	port := slowRelay(t, srv.Addr(), 500*time.Millisecond)
	providers := strings.Replace(emailProviders(srv), "smtp_port: "+strconv.Itoa(srv.Port), "smtp_port: "+strconv.Itoa(port), 1)

	// Within the default deadline, the late server is fine.
	if _, out, rep := doctor(t, writeConfig(t, plugins, providers)); func() bool {
		st, _, _ := rep.check("provider.email.activate")
		return st != "ok"
	}() {
		t.Fatalf("default timeout, SMTP in 0.5 s: want Activate ok\n%s", out)
	}

	// With timeout: 200ms, serve's Activate misses its deadline: the
	// doctor must not say it passed.
	short := strings.Replace(providers, "    clients: true\n", "    clients: true\n    timeout: 200ms\n", 1)
	if short == providers {
		t.Fatal("emailProviders changed shape")
	}
	h := startHostIn(t, plugins, short, hclog.NewNullLogger())
	r := h.do("GET", "/v1/providers", adminKey, nil)
	if list, _ := r.body["providers"].([]any); len(list) != 1 || list[0].(map[string]any)["health"] == "healthy" {
		t.Fatalf("serve with timeout: 200ms, SMTP in 0.5 s: %v (the premise: its Activate times out)", r.body)
	}
	t.Logf("serve: %v", r.body["providers"])
	code, out, rep := doctor(t, writeConfig(t, plugins, short))
	if st, _, _ := rep.check("provider.email.activate"); st == "ok" || code == 0 {
		t.Errorf("timeout: 200ms, SMTP in 0.5 s: doctor exit %d, activate %q; serve's Activate would time out\n%s", code, st, out)
	}
}
