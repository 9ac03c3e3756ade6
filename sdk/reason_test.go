package sdk

import (
	"strings"
	"testing"
)

func TestReasonRule(t *testing.T) {
	tests := []struct {
		reason       Reason
		fromProvider bool
		custom       bool
		counts       bool // with a code
		pushCounts   bool // without one
	}{
		{ReasonNone, true, false, true, true},
		{ReasonInvalidCode, true, false, true, true},
		{ReasonReplayed, true, false, false, false},
		{ReasonExpired, true, false, false, false},
		{ReasonUnavailable, true, false, false, false},
		{ReasonBackendRefused, true, false, true, false},
		{ReasonFraud, true, false, true, true},
		{ReasonResyncRequired, true, false, true, true},
		{ReasonLockedOut, true, false, false, false},
		{ReasonDeniedByPolicy, true, false, true, false},
		{ReasonEnrollmentRequired, true, false, true, false},
		{ReasonWaiting, true, false, true, false},
		{"x-card-blocked", true, true, true, true},
		{"x-a_b-c9", true, true, true, true},
		// Host reasons: a provider returning one breaks the rule.
		{ReasonNotEnrolled, false, false, false, false},
		{ReasonPushLimit, false, false, false, false},
		{ReasonInvalidReason, false, false, true, true},
		// Outside the rule.
		{"wrong_code", false, false, true, true},
		{"X-Card", false, false, true, true},
		{"x-", false, false, true, true},
		{"x--double", false, false, true, true},
		{"x-trailing-", false, false, true, true},
		{"x-has space", false, false, true, true},
		{"x-123456\n", false, false, true, true},
		{Reason("x-" + strings.Repeat("a", 63)), false, false, true, true},
		{Reason("x-" + strings.Repeat("a", 62)), true, true, true, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			if got := tt.reason.FromProvider(); got != tt.fromProvider {
				t.Errorf("FromProvider = %v, want %v", got, tt.fromProvider)
			}
			if got := tt.reason.IsCustom(); got != tt.custom {
				t.Errorf("IsCustom = %v, want %v", got, tt.custom)
			}
			if got := tt.reason.CountsAgainstBudget(true); got != tt.counts {
				t.Errorf("CountsAgainstBudget(with a code) = %v, want %v", got, tt.counts)
			}
			if got := tt.reason.CountsAgainstBudget(false); got != tt.pushCounts {
				t.Errorf("CountsAgainstBudget(without) = %v, want %v", got, tt.pushCounts)
			}
		})
	}
}

func TestCheckFactor(t *testing.T) {
	c := Capabilities{Factors: []Factor{"push", "passcode"}}
	for _, f := range []Factor{"", "push", "passcode"} {
		if err := c.CheckFactor(f); err != nil {
			t.Errorf("CheckFactor(%q) = %v, want nil", f, err)
		}
	}
	for _, f := range []Factor{"sms", "PUSH", "push "} {
		err := c.CheckFactor(f)
		if e, ok := err.(*Error); !ok || e.Kind != KindInvalidRequest || e.Field != "factor" {
			t.Errorf("CheckFactor(%q) = %v, want invalid_request naming factor", f, err)
		}
	}
}
