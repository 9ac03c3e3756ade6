package host_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/duoconfig"
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
			emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: mode, Timeout: duotest.Timeout})
			for i, sc := range duotest.WildScenarios() {
				t.Run(sc.Name, func(t *testing.T) {
					// Each scenario on its own, with a user of its own: an
					// outage's errors keep their attempts, pushes have a
					// window, and a push a scenario left waiting is, once
					// expired, asked about at the next start, which sends
					// nothing while Duo says it still waits (the emulator's
					// clock does not follow the host's jump); none of that is
					// under test here (see gate_test.go,
					// TestUnpolledFraudSurvivesDuoOutage).
					h.clock.Add(11 * time.Minute)
					emu.ResetWild()
					wild := "wild-" + strconv.Itoa(i)
					emu.AddUser(wild)
					h.enrollDuo(emu, wild, "staff")
					emu.AddPasscode(wild, duotest.Passcode)
					before := verifyEntries(h, wild)
					body := map[string]string{"factor": "passcode", "code": duotest.Passcode}
					if sc.Push {
						body = map[string]string{"factor": "push"}
					}
					var v response
					if sc.Poll {
						v = h.duoVerify(wild, body)
						if v.str("outcome") != "pending" {
							t.Fatalf("push: %d %v", v.status, v.body)
						}
						txid := v.str("txid")
						before = verifyEntries(h, wild)
						sc.Apply(emu)
						v = h.poll(wild, txid)
					} else {
						sc.Apply(emu)
						start := time.Now()
						v = h.duoVerify(wild, body)
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
					after := verifyEntries(h, wild)
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

// TestDuoUnreachableAtStart: a host started while Duo cannot be reached
// registers the provider and applies its failmode from the first verify,
// audited; the failmode can be changed by a reload while Duo is still
// down.
func TestDuoUnreachableAtStart(t *testing.T) {
	for _, mode := range []string{"secure", "safe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t)
			emu.AddUser("una")
			down := func() { emu.Fail(math.MaxInt, duotest.Failure{Drop: true}) }
			down()
			h := startHost(t, "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: mode}))
			p := h.do("GET", "/v1/providers", adminKey, nil).body["providers"].([]any)[0].(map[string]any)
			diags := toJSON(p["diagnostics"])
			if p["health"] != "unhealthy" || p["running"] != true || !strings.Contains(diags, `"code":"duo_unreachable"`) ||
				!strings.Contains(diags, `"severity":"error"`) || !strings.Contains(diags, `"fix":"check that this server reaches https://`+emu.Host()) {
				t.Fatalf("provider status with Duo down at start: %v", p)
			}
			// Duo answers for a moment, long enough to enroll.
			emu.ClearFailures()
			h.enrollDuo(emu, "una", "staff")
			down()
			want := map[string]string{"secure": "deny/unavailable", "safe": "allow/failmode_safe"}[mode]
			v := h.duoVerify("una", map[string]string{"factor": "passcode", "code": "123456"})
			if got := v.str("outcome") + "/" + v.str("reason"); got != want {
				t.Fatalf("verify with Duo down since start: %d %v, want %s", v.status, v.body, want)
			}
			entries := verifyEntries(h, "una")
			if n := len(entries); n == 0 || entries[n-1]["outcome"].(string)+"/"+entries[n-1]["reason"].(string) != want {
				t.Errorf("audit: %v, want a %s entry", entries, want)
			}

			// Flip the failmode by a reload while Duo is still down.
			other := map[string]string{"secure": "safe", "safe": "secure"}[mode]
			text, _ := os.ReadFile(h.configPath)
			next := strings.Replace(string(text), "failmode: "+mode, "failmode: "+other, 1)
			if err := os.WriteFile(h.configPath, []byte(next), 0o600); err != nil {
				t.Fatal(err)
			}
			// Reload directly rather than wait for the file watcher: the
			// new plugin's start is what is tested, not the watcher's speed
			// on a loaded machine.
			if err := h.svc.Reload(context.Background()); err != nil {
				t.Fatalf("reload of the failmode refused while Duo is down: %v", err)
			}
			want = map[string]string{"secure": "deny/unavailable", "safe": "allow/failmode_safe"}[other]
			v = h.duoVerify("una", map[string]string{"factor": "passcode", "code": "123456"})
			if got := v.str("outcome") + "/" + v.str("reason"); got != want {
				t.Errorf("verify after the reload: %d %v, want %s", v.status, v.body, want)
			}
		})
	}
}

// TestDuoSkewMidRun: the emulator's clock jumps 400 s during a burst of
// concurrent passcode verifies; none fails for it: each request that meets
// a 401 measures Duo's clock and is signed again.
func TestDuoSkewMidRun(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "secure"}, "sam")
	const workers, each = 4, 6
	for i := range workers * each {
		emu.AddPasscode("sam", fmt.Sprintf("%06d", 100000+i))
	}
	var wg sync.WaitGroup
	var done atomic.Int64
	jumped := make(chan struct{})
	failures := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if i == each/2 {
					<-jumped // the second half runs after the jump
				}
				code := fmt.Sprintf("%06d", 100000+w*each+i)
				v := h.duoVerify("sam", map[string]string{"factor": "passcode", "code": code})
				if v.str("outcome") != "allow" {
					failures <- fmt.Sprintf("%s: %d %v", code, v.status, v.body)
				}
				done.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < workers*each/2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	emu.SetClockOffset(400 * time.Second)
	close(jumped)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error("verify failed across the clock jump:", f)
	}
	bad := 0
	for _, r := range emu.Requests() {
		if r.Code == 40105 {
			bad++
		}
	}
	if bad == 0 {
		t.Error("no request met the skewed clock: the test did not test the jump")
	}
}

// TestDuoCredentialsNamed: each classic mistake, answered by Duo with a
// JSON error and by a server that sends bare errors, is named by the
// setting in twofactor providers and in doctor, never as a DNS problem.
func TestDuoCredentialsNamed(t *testing.T) {
	emu := startEmulator(t)
	ikey, skey := emu.Integration()
	webIkey, webSkey := emu.AddWebSDKIntegration()
	other := startEmulator(t) // another Duo: a wrong api_hostname that is still a Duo
	for _, tc := range []struct {
		name       string
		emu        *duotest.Server
		ikey, skey string
		// setting must be named in the fix; bare: when the answer is bare
		setting, bareSetting string
	}{
		{"wrong integration key", emu, "DI" + strings.Repeat("Q", 18), skey, "integration_key", "integration_key"},
		{"wrong secret key", emu, ikey, strings.Repeat("k", 40), "secret_key", "secret_key"},
		{"wrong hostname", other, ikey, skey, "api_hostname", "api_hostname"},
		{"wrong application type", emu, webIkey, webSkey, "Auth API", "Auth API"},
	} {
		for _, bare := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bare=%v", tc.name, bare), func(t *testing.T) {
				tc.emu.SetBareErrors(bare)
				defer tc.emu.SetBareErrors(false)
				path := doctorDuoConfig(t, tc.emu, tc.ikey, tc.skey)
				_, out, rep := doctor(t, path)
				st, msg, fix := rep.check("provider.duo.activate")
				if st != "fail" || !strings.Contains(fix, tc.setting) || strings.Contains(fix, "DNS") {
					t.Errorf("doctor: %s %q\nfix %q\n%s", st, msg, fix, out)
				}
				code, pout, _ := runCLI("providers", "--config", path)
				if code == 0 || !strings.Contains(pout, "fix: ") || !strings.Contains(pout, tc.setting) || strings.Contains(pout, "DNS") {
					t.Errorf("twofactor providers: exit %d\n%s", code, pout)
				}
				for _, secret := range []string{tc.skey} {
					if strings.Contains(out+pout, secret) {
						t.Fatal("a secret key was printed")
					}
				}
			})
		}
	}
}

// TestDuoPreauthResultsThroughHost: preauth's enroll reaches the API with
// Duo's enroll_portal_url (from verify and from a push start), a deny's status_msg reaches the audit log, and
// neither spends the user's attempt budget.
func TestDuoPreauthResultsThroughHost(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "safe"}, "pia")
	for range 6 { // more than the attempt budget would allow if they counted
		emu.SetPreauthResult("pia", "enroll", "")
		v := h.duoVerify("pia", map[string]string{"factor": "push"})
		portal := v.str("enroll_portal_url")
		if v.str("outcome") != "deny" || v.str("reason") != "enrollment_required" ||
			!strings.HasPrefix(portal, "https://"+emu.Host()+"/portal?code=") {
			t.Fatalf("preauth enroll: %d %v", v.status, v.body)
		}
		// A push started through /verifications is decided at once the
		// same way, and carries the portal too.
		st := h.do("POST", "/v1/users/pia/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "push"})
		if st.status != http.StatusOK || st.str("outcome") != "deny" || st.str("reason") != "enrollment_required" ||
			!strings.HasPrefix(st.str("enroll_portal_url"), "https://"+emu.Host()+"/portal?code=") {
			t.Fatalf("push start, preauth enroll: %d %v", st.status, st.body)
		}
		emu.SetPreauthResult("pia", "deny", "Your account is disabled by IT")
		v = h.duoVerify("pia", map[string]string{"factor": "push"})
		if v.str("outcome") != "deny" || v.str("reason") != "denied_by_policy" {
			t.Fatalf("preauth deny: %d %v", v.status, v.body)
		}
	}
	entries := verifyEntries(h, "pia")
	last := entries[len(entries)-1]
	if d, _ := last["details"].(map[string]any); d["status_msg"] != "Your account is disabled by IT" {
		t.Errorf("audit entry %v, want Duo's status_msg in its details", last)
	}
	// The user is not locked out: Duo's own allow still goes through.
	// (A bypass: the allow says the user answered nothing.)
	emu.SetPreauthResult("pia", "allow", "")
	if v := h.duoVerify("pia", map[string]string{"factor": "push"}); v.str("outcome") != "allow" || v.body["unprompted"] != true {
		t.Errorf("after 12 denials by Duo's policy: %d %v, want an unprompted allow", v.status, v.body)
	}
}
