package host_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestDuoWildThroughHost drives the real host and the real Duo plugin
// through every switch of the emulator (duotest.WildScenarios), in both
// failmodes: no answer but Duo's own allow, and an outage in failmode
// safe, is ever an allow, and every outcome is in the audit log.
func TestDuoWildThroughHost(t *testing.T) {
	for _, mode := range []string{"secure", "safe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t)
			ikey, skey := emu.Integration()
			emu.AddUser("wild")
			h := startHost(t, "providers:\n"+duoSettingsTimeout(t, emu, ikey, skey, mode, duotest.Timeout))
			if r := h.do("POST", "/v1/users/wild/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); r.str("status") != "active" {
				t.Fatalf("enroll: %v", r.body)
			}
			for _, sc := range duotest.WildScenarios() {
				t.Run(sc.Name, func(t *testing.T) {
					emu.ResetWild()
					emu.AddPasscode("wild", duotest.Passcode)
					before := verifyEntries(h, "wild")
					body := map[string]string{"factor": "passcode", "code": duotest.Passcode}
					if sc.Push {
						body = map[string]string{"factor": "push"}
					}
					var v response
					if sc.Poll {
						v = h.duoVerify("wild", body)
						if v.str("outcome") != "pending" {
							t.Fatalf("push: %d %v", v.status, v.body)
						}
						txid := v.str("txid")
						before = verifyEntries(h, "wild")
						sc.Apply(emu)
						v = h.poll("wild", txid)
					} else {
						sc.Apply(emu)
						start := time.Now()
						v = h.duoVerify("wild", body)
						if took := time.Since(start); took > duotest.Timeout+time.Second {
							t.Errorf("verify took %v with a %v timeout", took, duotest.Timeout)
						}
					}
					got := v.str("outcome") + "/" + v.str("reason")
					if v.str("outcome") == "allow" && sc.Expect != duotest.ExpectDuo && (sc.Expect != duotest.ExpectOutage || mode != "safe") {
						t.Fatalf("ALLOW (%s) on %s, expect %s, failmode %s: %v", got, sc.Name, sc.Expect, mode, v.body)
					}
					want := map[duotest.Expect]string{
						duotest.ExpectDuo:     "allow/",
						duotest.ExpectWaiting: "pending/waiting",
						duotest.ExpectOutage:  map[string]string{"secure": "deny/unavailable", "safe": "allow/failmode_safe"}[mode],
						duotest.ExpectRefused: "deny/backend_refused",
					}[sc.Expect]
					if sc.Expect == duotest.ExpectDuo && sc.Push {
						want = "pending/waiting"
					}
					switch {
					case sc.Expect == duotest.ExpectCredentials:
						if v.status != http.StatusServiceUnavailable || v.errCode() != "provider_unavailable" {
							t.Errorf("%d %v, want 503 provider_unavailable", v.status, v.body)
						}
					case got != want:
						t.Errorf("%d %v, want %s", v.status, v.body, want)
					}
					// Every outcome but a pending push is in the audit log.
					after := verifyEntries(h, "wild")
					if want == "pending/waiting" {
						return
					}
					if len(after) != len(before)+1 {
						t.Fatalf("%d verify entries after, %d before: want one more", len(after), len(before))
					}
					last := after[len(after)-1]
					if sc.Expect == duotest.ExpectCredentials {
						got, want = last["outcome"].(string)+"/"+last["reason"].(string), "error/provider_unavailable"
					} else {
						got = last["outcome"].(string) + "/"
						if r, ok := last["reason"].(string); ok {
							got += r
						}
					}
					if got != want {
						t.Errorf("audit entry %v, want %s", last, want)
					}
				})
			}
		})
	}
}

// verifyEntries lists the user's verify audit entries, oldest first.
func verifyEntries(h *testHost, user string) []map[string]any {
	h.t.Helper()
	r := h.do("GET", "/v1/audit?user="+user+"&limit=1000", adminKey, nil)
	var out []map[string]any
	entries, _ := r.body["entries"].([]any)
	for _, e := range entries {
		if m, ok := e.(map[string]any); ok && m["event"] == "verify" {
			out = append(out, m)
		}
	}
	return out
}
