package framework

import (
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestRecoveryCodesLeftAfter: only an allow that used a recovery code has
// a count, 0 included; a count a provider put in Details is not one.
func TestRecoveryCodesLeftAfter(t *testing.T) {
	used := func(left int) *RecoveryUse { return &RecoveryUse{UserID: "alice", Hash: []byte("h"), Left: left} }
	for _, tc := range []struct {
		name string
		res  VerifyResult
		left int
		ok   bool
	}{
		{"allow by recovery code", VerifyResult{Outcome: sdk.Allow, recovery: used(3)}, 3, true},
		{"the last code", VerifyResult{Outcome: sdk.Allow, recovery: used(0)}, 0, true},
		{"deny", VerifyResult{Outcome: sdk.Deny, Reason: sdk.ReasonInvalidCode}, 0, false},
		{"allow by a provider", VerifyResult{Outcome: sdk.Allow}, 0, false},
		{"a provider's detail", VerifyResult{Outcome: sdk.Allow, Details: map[string]string{DetailRecoveryCodesLeft: "7"}}, 0, false},
	} {
		left, ok := RecoveryCodesLeftAfter(tc.res)
		if left != tc.left || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, left, ok, tc.left, tc.ok)
		}
	}
}
