package framework_test

import (
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// TestPushDecisionAuditsClientIP: the decision of a push is made by the
// request that collects it (a poll, or a verify with its txid), and its
// audit entry carries that request's client_ip, as a code's allow does:
// the address of whoever took the user's approval is what a push-fatigue
// investigation looks for. Before, Poll checked the client_ip and then
// dropped it: every push allow, denial and the lockout it started were
// audited without an address.
func TestPushDecisionAuditsClientIP(t *testing.T) {
	const ip = "198.51.100.7"
	for _, tt := range []struct {
		name    string
		out     sdk.Outcome
		reason  sdk.Reason
		collect func(fw *framework.Framework, txid string) (framework.VerifyResult, error)
	}{
		{"poll allow", sdk.Allow, "", func(fw *framework.Framework, txid string) (framework.VerifyResult, error) {
			return fw.Poll(t.Context(), framework.PollInput{UserID: "alice", TxID: txid, ClientIP: ip})
		}},
		{"poll remembering the device", sdk.Allow, "", func(fw *framework.Framework, txid string) (framework.VerifyResult, error) {
			return fw.Poll(t.Context(), framework.PollInput{UserID: "alice", TxID: txid, ClientIP: ip, RememberDevice: true})
		}},
		{"verify with the txid", sdk.Allow, "", func(fw *framework.Framework, txid string) (framework.VerifyResult, error) {
			return fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff, TxID: txid, ClientIP: ip})
		}},
		{"poll fraud", sdk.Deny, sdk.ReasonFraud, func(fw *framework.Framework, txid string) (framework.VerifyResult, error) {
			return fw.Poll(t.Context(), framework.PollInput{UserID: "alice", TxID: txid, ClientIP: ip})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fw, prov, _, _ := newPushEnv(t, framework.PushLimit{})
			res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff,
				Factor: framework.FactorPush, Session: "login", ClientIP: ip})
			if err != nil || res.Outcome != sdk.Pending {
				t.Fatalf("push: %+v %v", res, err)
			}
			prov.answer(tt.out, tt.reason)
			if got, err := tt.collect(fw, res.TxID); err != nil || got.Outcome != tt.out {
				t.Fatalf("collecting the push: %+v %v, want %s", got, err, tt.out)
			}
			list, err := fw.Audit(t.Context(), framework.AuditQuery{UserID: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			decisions := 0
			for _, e := range list {
				if (e.Event == framework.EventVerify && e.Outcome == string(tt.out)) || e.Event == framework.EventLockout {
					decisions++
					if e.ClientIP != ip {
						t.Errorf("audit entry %s %s/%s: client_ip %q, want %q", e.Event, e.Outcome, e.Reason, e.ClientIP, ip)
					}
				}
			}
			if decisions == 0 {
				t.Errorf("no audit entry of the decision: %+v", list)
			}
		})
	}
}
