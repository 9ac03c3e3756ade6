package host_test

import (
	"net/http"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// TestDuoActivationPollsSpendNothing: a user who has begun a Duo
// enrollment and not yet activated Duo Mobile, whose client polls the
// confirmation (no code: nothing secret is checked, the host asks Duo
// whether the phone is activated), is never locked out by the polling.
// A burst of polls is held by the gate (at most the free attempts in
// flight at once, the rest 429) but every one is given back, so more
// polls one after another than the budget has free attempts are all
// answered 202 waiting, and the user's factors are not locked. A
// confirmation that sends a code is a guess, and still counts: an
// attacker gains no attempts from the refund.
func TestDuoActivationPollsSpendNothing(t *testing.T) {
	emu := startEmulator(t)
	h := duoHost(t, emu, "secure")
	free := framework.DefaultLockoutPolicy.FreeAttempts
	begin := func(user string) string {
		r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"})
		d, _ := r.body["display"].(map[string]any)
		if r.status != http.StatusCreated || d["activation_code"] == nil {
			t.Fatalf("begin: %d %v", r.status, r.body)
		}
		return d["activation_code"].(string)
	}
	confirm := func(user string, body map[string]string) response {
		return h.do("POST", "/v1/users/"+user+"/enrollments/duo/confirm", appKey, body)
	}

	activation := begin("carol")
	got := httpBurst(t, []*testHost{h}, 4*free, func(*testHost, int) response { return confirm("carol", map[string]string{}) })
	if got["/waiting"] == 0 || got["/waiting"]+got["429"] != 4*free {
		t.Fatalf("a burst of %d polls: %v; want each waiting or 429", 4*free, got)
	}
	for i := range 2 * free {
		if r := confirm("carol", map[string]string{}); r.status != http.StatusAccepted || r.str("reason") != "waiting" {
			t.Fatalf("poll %d after the burst: %d %v; want 202 waiting", i+1, r.status, r.body)
		}
	}
	if err := emu.ActivateEnrollment(activation); err != nil {
		t.Fatal(err)
	}
	if r := confirm("carol", map[string]string{}); r.status != http.StatusOK || r.str("status") != "active" {
		t.Fatalf("confirm after activation: %d %v", r.status, r.body)
	}
	emu.AddPasscode("carol", "314159")
	if v := h.duoVerify("carol", map[string]string{"factor": "passcode", "code": "314159"}); v.str("outcome") != "allow" {
		t.Fatalf("login after the polls: %d %v", v.status, v.body)
	}

	// With a code, each confirmation counts, waiting or not.
	begin("dave")
	got = httpBurst(t, []*testHost{h}, 4*free, func(*testHost, int) response { return confirm("dave", map[string]string{"code": "123456"}) })
	if got["/waiting"] > free || got["/waiting"]+got["429"] != 4*free {
		t.Fatalf("a burst of %d confirmations with a code: %v; want at most %d evaluated, the rest 429", 4*free, got, free)
	}
	if r := confirm("dave", map[string]string{}); r.status != http.StatusTooManyRequests || r.errCode() != "locked_out" {
		t.Fatalf("a poll after %d guesses: %d %v; want 429", free, r.status, r.body)
	}
}
