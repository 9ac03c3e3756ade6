package framework_test

import (
	"math"
	"net/http"
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// TestPolledFraudSurvivesDuoOutage: the user reports a live Duo push as
// fraud, and the login's poll comes while Duo fails (503, garbage, an
// empty body): the provider's answer is not the user's, as it is not
// for an expired push (TestUnpolledFraudSurvivesDuoOutage). The poll is
// refused, but the push must stay for the next poll or start to settle:
// once Duo answers again, the next poll counts the report, the start
// after it is refused with its lockout, and no new push is sent.
func TestPolledFraudSurvivesDuoOutage(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail duotest.Failure
	}{
		{name: "503", fail: duotest.Failure{Status: http.StatusServiceUnavailable}},
		{name: "malformed JSON", fail: duotest.Failure{Malformed: true}},
		{name: "empty body", fail: duotest.Failure{Status: http.StatusBadGateway, EmptyBody: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			emu, fw, _ := duoPushEnv(t, "secure")
			start := func() (framework.VerifyResult, error) {
				return fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "duo", Audience: framework.AudienceStaff, Factor: "push", Session: "attacker-login"})
			}
			emu.ScriptPush("alice", duotest.Push{Result: "fraud"})
			res, err := start()
			if err != nil || res.Outcome != sdk.Pending {
				t.Fatalf("the attacker's push: %+v %v", res, err)
			}

			tt.fail.Path = "/auth/v2/auth_status"
			emu.Fail(math.MaxInt, tt.fail)
			polled, perr := fw.PollVerification(t.Context(), "alice", res.TxID)
			emu.ClearFailures()
			if perr == nil && polled.Outcome == sdk.Allow {
				t.Fatalf("a poll while Duo fails (failmode secure): %+v, want no allow", polled)
			}

			// Duo answers again: the report is still there to count, by
			// the login's next poll, and the start after it is refused.
			if again, err := fw.PollVerification(t.Context(), "alice", res.TxID); err != nil || again.Reason != sdk.ReasonFraud {
				t.Errorf("a poll once Duo answers again: %+v %v, want the fraud report", again, err)
			}
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
