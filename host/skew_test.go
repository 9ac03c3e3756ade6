package host_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClockSkewThroughHost: a code from a phone 4 periods behind is denied
// with clock_skew_suspected through the real host and plugin (on the first
// failure of a run: the host tells the plugin the run's failures), the
// audit entry records the offset, and doctor reports it.
func TestClockSkewThroughHost(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	h.clock.Add(10 * time.Minute) // the next login, later

	old, err := totpCode(secret, h.clock.Now().Add(-4*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r := h.verify("alice", old)
	if r.status != http.StatusOK || r.str("outcome") != "deny" || r.str("reason") != "clock_skew_suspected" {
		t.Fatalf("code 4 steps old: %d %v", r.status, r.body)
	}
	if !strings.Contains(r.str("message"), "4 steps in the past") {
		t.Errorf("message: %q", r.str("message"))
	}

	entries, _ := h.do("GET", "/v1/audit?user=alice", adminKey, nil).body["entries"].([]any)
	if len(entries) == 0 {
		t.Fatal("no audit entries")
	}
	last := entries[len(entries)-1].(map[string]any)
	details, _ := last["details"].(map[string]any)
	if last["event"] != "verify" || last["reason"] != "clock_skew_suspected" || details["step_offset"] != "-4" || details["step_seconds"] != "30" {
		t.Errorf("audit entry: %v", last)
	}

	// The hint is for the first failure of a run: the same code again,
	// after that failure, is a plain invalid_code (the wider scan is not
	// run for a guesser's every try).
	if again := h.verify("alice", old); again.str("reason") != "invalid_code" || again.body["details"] != nil {
		t.Errorf("the old code after a failure: %d %v; want invalid_code, no details", again.status, again.body)
	}

	// Within the skew the current code is still accepted; the success ends
	// the run, and the next failure gets the hint again.
	if v := h.verify("alice", h.code(secret)); v.str("outcome") != "allow" {
		t.Errorf("current code: %d %v", v.status, v.body)
	}
	h.clock.Add(10 * time.Minute) // past the accepted step: a fresh old code
	old, err = totpCode(secret, h.clock.Now().Add(-4*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if hint := h.verify("alice", old); hint.str("reason") != "clock_skew_suspected" {
		t.Errorf("an old code after the success: %d %v; want clock_skew_suspected", hint.status, hint.body)
	}

	h.stop()
	code, out, stderr := runCLI("doctor", "--config", h.configPath)
	if code != 0 {
		t.Errorf("doctor: exit %d (a warning must not fail)\n%s%s", code, out, stderr)
	}
	line := regexp.MustCompile(`(?m)^! audit\.clock_skew: .*$`).FindString(out)
	if !strings.Contains(line, "2 verification(s) by 1 user(s)") || !strings.Contains(line, "-4 steps") ||
		!strings.Contains(out, "about 4×30 s") {
		t.Errorf("doctor does not report the skew:\n%s", out)
	}
}
