package host_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// TestDuoRefusalsSpendTheBudget: a passcode Duo refuses rather than
// checks (an auth answered 400: backend_refused; a preauth answered
// enroll: enrollment_required) spends an attempt like a wrong one, so a
// backend that met every wrong passcode with a refusal gives no more
// guesses than the budget: of 20 at once, at most free_attempts are
// evaluated, the rest answer 429, and so does the next one. A push request
// refused the same way sends no secret and spends nothing
// (TestDuoPreauthResultsThroughHost).
func TestDuoRefusalsSpendTheBudget(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "secure"}, "rita")
	passcode := func(h *testHost, i int) response {
		return h.duoVerify("rita", map[string]string{"factor": "passcode", "code": fmt.Sprintf("%06d", 100000+i)})
	}
	for _, tc := range []struct {
		reason string
		refuse func()
	}{
		{"backend_refused", func() { emu.Fail(1000, duotest.Failure{Path: "/auth/v2/auth", Status: http.StatusBadRequest}) }},
		{"enrollment_required", func() { emu.SetPreauthResult("rita", "enroll", "") }},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			if u := h.do("POST", "/v1/users/rita/unlock", adminKey, nil); u.status != http.StatusNoContent {
				t.Fatalf("unlock: %d %v", u.status, u.body)
			}
			tc.refuse()
			defer func() { emu.ClearFailures(); emu.SetPreauthResult("rita", "auth", "") }()
			got := httpBurst(t, []*testHost{h}, 20, passcode)
			if n := got["deny/"+tc.reason]; n == 0 || n > free+1 || n+got["429"] != 20 {
				t.Fatalf("20 passcodes at once, each refused by Duo as %s: %v; want at most %d evaluated, the rest 429", tc.reason, got, free+1)
			}
			if v := passcode(h, 99); v.status != http.StatusTooManyRequests || v.errCode() != "locked_out" {
				t.Errorf("a passcode after the burst: %d %v, want 429 locked_out", v.status, v.body)
			}
		})
	}
}
