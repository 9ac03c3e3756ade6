package framework

import (
	"errors"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestSettlementOf: how each answer ends its attempt, with a code and for
// a request that sent no secret (a push, a poll). A backend's refusal of
// a code counts like a wrong code; of a push request it does not.
func TestSettlementOf(t *testing.T) {
	deny := func(r sdk.Reason) VerifyResult { return VerifyResult{Outcome: sdk.Deny, Reason: r} }
	tests := []struct {
		name         string
		res          VerifyResult
		err          error
		code, noCode settlement
	}{
		{"allow", VerifyResult{Outcome: sdk.Allow}, nil, settleSuccess, settleSuccess},
		{"pending", VerifyResult{Outcome: sdk.Pending, Reason: sdk.ReasonWaiting}, nil, settleRefund, settleRefund},
		{"no answer", VerifyResult{}, errors.New("provider timeout"), settleRefund, settleRefund},
		{"wrong code", deny(sdk.ReasonInvalidCode), nil, settleFailure, settleFailure},
		{"clock skew", deny(sdk.ReasonClockSkewSuspected), nil, settleFailure, settleFailure},
		{"denied by the user", deny(sdk.ReasonDeniedByUser), nil, settleFailure, settleFailure},
		{"fraud", deny(sdk.ReasonFraud), nil, settleFailure, settleFailure},
		{"backend refused", deny(sdk.ReasonBackendRefused), nil, settleFailure, settleRefund},
		{"enrollment required", deny(sdk.ReasonEnrollmentRequired), nil, settleFailure, settleRefund},
		{"denied by policy", deny(sdk.ReasonDeniedByPolicy), nil, settleFailure, settleRefund},
		{"waiting for an activation", deny(sdk.ReasonWaiting), nil, settleFailure, settleRefund},
		{"replayed", deny(sdk.ReasonReplayed), nil, settleRefund, settleRefund},
		{"backend unreachable", deny(sdk.ReasonUnavailable), nil, settleRefund, settleRefund},
		{"not enrolled", deny(ReasonNotEnrolled), nil, settleRefund, settleRefund},
		{"unknown reason", deny("something new"), nil, settleFailure, settleFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := settlementOf(tc.res, tc.err, true); got != tc.code {
				t.Errorf("with a code: %d, want %d", got, tc.code)
			}
			if got := settlementOf(tc.res, tc.err, false); got != tc.noCode {
				t.Errorf("without a code: %d, want %d", got, tc.noCode)
			}
		})
	}
}
