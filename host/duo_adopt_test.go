package host_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// The passcode that confirms the Duo device of a user Duo already knows
// is a guess like a TOTP setup code: it is checked in the factors'
// budget, so passcodes cannot be tried at the confirmation without bound.

// TestDuoSetupPasscodeGuessesBounded: a burst of wrong passcodes at the
// confirmation of gus's Duo setup, at once: at most the free attempts
// reach Duo, the rest are 429; then the right passcode is refused
// (locked_out) and the enrollment stays pending.
func TestDuoSetupPasscodeGuessesBounded(t *testing.T) {
	emu := startEmulator(t)
	emu.AddUser("gus")
	h := duoHost(t, emu, "secure")
	if checked := guessSetupPasscodes(t, emu, []*testHost{h}, "gus"); checked > free || checked == 0 {
		t.Errorf("%d wrong passcodes checked, want 1 to %d", checked, free)
	}
}

// TestDuoSetupPasscodeGuessesBoundedReplicas: the same burst split over
// two replicas sharing PostgreSQL: exactly the free attempts checked,
// each counted once, and gus locked out on both.
func TestDuoSetupPasscodeGuessesBoundedReplicas(t *testing.T) {
	dsn := postgresDSN(t)
	emu := startEmulator(t)
	emu.AddUser("gus")
	config, _ := postgresConfigAt(t, dsn, "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: "secure"}))
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	if checked := guessSetupPasscodes(t, emu, []*testHost{a, b}, "gus"); checked != free {
		t.Errorf("%d wrong passcodes checked over two replicas, want %d", checked, free)
	}
	if n := factorFailures(t, dsn, "gus"); n != free {
		t.Errorf("the budget after the guesses: %d counted, want %d (each once)", n, free)
	}
}

// guessSetupPasscodes begins user's Duo setup on hosts[0], sends 4×free
// wrong passcodes at once to its confirmation (split over hosts), checks
// that each was refused (422 invalid_code) or held (429) and that the
// right passcode then is locked out on every host, the setup still
// pending. It returns how many passcodes reached Duo.
func guessSetupPasscodes(t *testing.T, emu *duotest.Server, hosts []*testHost, user string) int {
	t.Helper()
	if r := hosts[0].do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); r.status != http.StatusCreated || r.str("status") != "pending" {
		t.Fatalf("begin: %d %v", r.status, r.body)
	}
	confirm := func(h *testHost, code string) response {
		return h.do("POST", "/v1/users/"+user+"/enrollments/duo/confirm", appKey, map[string]string{"code": code})
	}
	auths := func() int {
		n := 0
		for _, r := range emu.Requests() {
			if r.Path == "/auth/v2/auth" {
				n++
			}
		}
		return n
	}
	before := auths()
	got := httpBurst(t, hosts, 4*free, func(h *testHost, i int) response { return confirm(h, fmt.Sprintf("%06d", i)) })
	if got["422"]+got["429"] != 4*free {
		t.Errorf("a burst of %d wrong passcodes: %v; want each 422 invalid_code or 429", 4*free, got)
	}
	checked := auths() - before
	if checked != got["422"] {
		t.Errorf("%d passcodes reached Duo, %d answered invalid_code", checked, got["422"])
	}
	emu.AddPasscode(user, setupPasscode)
	for _, h := range hosts {
		if r := confirm(h, setupPasscode); r.status != http.StatusTooManyRequests || r.errCode() != "locked_out" {
			t.Errorf("the right passcode after the guesses: %d %v; want 429 locked_out", r.status, r.body)
		}
	}
	if r := hosts[0].do("GET", "/v1/users/"+user+"/enrollments", appKey, nil); !strings.Contains(toJSON(r.body["enrollments"]), `"status":"pending"`) {
		t.Errorf("enrollments after the guesses: %v; want Duo pending", r.body)
	}
	return checked
}

// TestStaleDuoActivationNotConfirmedByAPI: an intruder with only dana's
// password, while she has no factor, begins her Duo setup through the
// application, activates it with their own phone and never finishes.
// dana then sets up an authenticator app. An application's "continue your
// Duo setup" button (POST .../duo/confirm {}) must not turn that setup on:
// it was begun without the step-up she needs now. It is answered as
// expired (begin again), and Duo stays pending; a setup begun again is
// the usual one.
func TestStaleDuoActivationNotConfirmedByAPI(t *testing.T) {
	emu := startEmulator(t)
	h := policyDuoHost(t, emu, "")
	r := h.do("POST", "/v1/users/dana/enrollments", appKey, map[string]string{"provider": "duo", "audience": "client"})
	d, _ := r.body["display"].(map[string]any)
	if r.status != http.StatusCreated || d["activation_code"] == nil {
		t.Fatalf("the intruder's begin: %d %v", r.status, r.body)
	}
	if err := emu.ActivateEnrollment(d["activation_code"].(string)); err != nil {
		t.Fatal(err)
	}
	h.enroll("dana")
	c := h.do("POST", "/v1/users/dana/enrollments/duo/confirm", appKey, map[string]string{})
	if c.status != http.StatusUnprocessableEntity || c.errCode() != "expired" {
		t.Errorf("confirm of the setup begun before dana had a factor: %d %v; want 422 expired", c.status, c.body)
	}
	list := toJSON(h.do("GET", "/v1/users/dana/enrollments", appKey, nil).body["enrollments"])
	if !strings.Contains(list, `"provider":"duo","status":"pending"`) {
		t.Errorf("dana's enrollments after the confirm: %s; want Duo pending", list)
	}
}
