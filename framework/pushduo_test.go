package framework_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/providers/duo"
	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// TestUnpolledFraudSurvivesDuoOutage: the user reports as fraud a Duo
// push nobody polled, and it expires. The next start must ask Duo what
// the user answered, and Duo (the emulator, answering as a real server
// would) hangs, fails with a 503 (in either failmode), or answers garbage
// or nothing. That start may not send a new push, and the report may not
// be lost: once Duo answers again, the next start counts it, the account
// is locked, and still no new push was sent. Before, any such failure
// read as "expired": the push was dropped with the report in it and a new
// push was sent at once. A Duo that says it does not know the
// transaction (40002) has answered: the push is dropped and a new one
// sent, as before.
func TestUnpolledFraudSurvivesDuoOutage(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failmode string
		fail     duotest.Failure
		unknown  bool // Duo answers that it does not know the push
	}{
		{name: "hung", fail: duotest.Failure{Delay: time.Hour}},
		{name: "503 failmode secure", failmode: "secure", fail: duotest.Failure{Status: http.StatusServiceUnavailable}},
		{name: "503 failmode safe", failmode: "safe", fail: duotest.Failure{Status: http.StatusServiceUnavailable}},
		{name: "malformed JSON", fail: duotest.Failure{Malformed: true}},
		{name: "empty body", fail: duotest.Failure{Status: http.StatusBadGateway, EmptyBody: true}},
		{name: "unknown transaction", fail: duotest.Failure{Status: http.StatusBadRequest, FailCode: 40002}, unknown: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			emu, fw, clk := duoPushEnv(t, tt.failmode)
			start := func() (framework.VerifyResult, error) {
				return fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "duo", Audience: framework.AudienceStaff, Factor: "push", Session: "attacker-login"})
			}
			emu.ScriptPush("alice", duotest.Push{Result: "fraud"})
			if res, err := start(); err != nil || res.Outcome != sdk.Pending {
				t.Fatalf("the attacker's push: %+v %v", res, err)
			}
			clk.Advance(6 * time.Minute) // nobody polls; the transaction expires

			tt.fail.Path = "/auth/v2/auth_status"
			emu.Fail(math.MaxInt, tt.fail)
			res, err := start()
			emu.ClearFailures()
			if tt.unknown {
				if err != nil || res.Outcome != sdk.Pending || duoPushesSent(emu) != 2 {
					t.Errorf("a start after Duo said it does not know the push: %+v %v, %d pushes sent; want a new push", res, err, duoPushesSent(emu))
				}
				return
			}
			if err == nil && res.Outcome == sdk.Pending {
				t.Errorf("a start while Duo cannot say what the user answered: %+v, want no push", res)
			}
			if n := duoPushesSent(emu); n != 1 {
				t.Errorf("%d pushes sent while Duo could not say what the user answered to the last one, want 1", n)
			}

			// Duo answers again: the report is still there to count.
			if _, err := start(); framework.CodeOf(err) != framework.CodeLockedOut || framework.IsPushPending(err) || framework.IsSendLimit(err) {
				t.Errorf("a start once Duo answers again: %v, want the lockout of the fraud report", err)
			}
			if n := duoPushesSent(emu); n != 1 {
				t.Errorf("%d pushes sent in all, want 1 (none after the fraud report)", n)
			}
			wantFraudReports(t, fw, "alice", 1)
		})
	}
}

// duoPushEnv is a framework with Duo in this process against a Duo
// emulator, for staff, on an injected clock, with alice enrolled (Duo
// knows her). failmode "" leaves Duo's default.
func duoPushEnv(t *testing.T, failmode string) (*duotest.Server, *framework.Framework, *clock) {
	t.Helper()
	emu, err := duotest.Start(duotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddUser("alice")
	ikey, skey := emu.Integration()
	settings := sdk.Settings{"integration_key": ikey, "secret_key": skey, "api_hostname": emu.Host(),
		"allow_custom_host": "true", "timeout": "1s"}
	if failmode != "" {
		settings["failmode"] = failmode
	}
	store, _ := openStore(t)
	clk := newClock()
	fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t), Now: clk.Now,
		Providers: []framework.ProviderSpec{{Name: "duo", Staff: true, Settings: settings,
			Impl: duo.New(duo.WithRootCAs(emu.CertPool()))}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	// A user Duo knows is confirmed with a passcode typed into the setup.
	if r, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "duo", Audience: framework.AudienceStaff}); err != nil || r.Status != framework.StatusPending {
		t.Fatalf("begin alice's Duo setup: %+v %v", r, err)
	}
	emu.AddPasscode("alice", "8675309")
	if c, err := fw.ConfirmEnrollment(t.Context(), "alice", "duo", "8675309"); err != nil || c.Status != framework.StatusActive {
		t.Fatalf("confirm alice's Duo setup: %+v %v", c, err)
	}
	return emu, fw, clk
}

// duoPushesSent counts the pushes the emulator sent.
func duoPushesSent(emu *duotest.Server) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "push" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}
