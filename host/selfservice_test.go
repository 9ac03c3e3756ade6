package host_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

func (h *testHost) remove(user, provider string, stepUp map[string]string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+user+"/enrollments/"+provider+"/remove", appKey, map[string]any{"audience": "client", "step_up": stepUp})
}

func (h *testHost) enrolled(user string) int {
	h.t.Helper()
	r := h.do("GET", "/v1/users/"+user+"/enrollments", appKey, nil)
	return len(r.body["enrollments"].([]any))
}

// TestRemoveEnrollmentStepUp: an application removes a user's factor
// with the app key only after a step-up the host checks; bad input and a
// wrong code remove nothing, and the wrong code counts; a recovery code is
// a step-up too; the admin's DELETE stays for admins.
func TestRemoveEnrollmentStepUp(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	codes := h.lastRecovery
	h.clock.Add(30 * time.Second)

	for _, tt := range []struct {
		name, provider string
		stepUp         map[string]string
		status         int
		code           string
	}{
		{"no such enrollment", "duo", map[string]string{"provider": "totp", "code": h.code(secret)}, 404, "not_found"},
		{"a push", "totp", map[string]string{"provider": "totp", "code": "1", "factor": "push"}, 400, "invalid_request"},
		{"no code", "totp", map[string]string{"provider": "totp", "code": ""}, 400, "invalid_request"},
		{"a wrong code", "totp", map[string]string{"provider": "totp", "code": "000000"}, 422, "invalid_code"},
		{"a wrong recovery code", "totp", map[string]string{"provider": "recovery", "code": "AAAA-BBBB-CCCC-DDDD"}, 422, "invalid_code"},
	} {
		if r := h.remove("alice", tt.provider, tt.stepUp); r.status != tt.status || r.errCode() != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	if r := h.do("DELETE", "/v1/users/alice/enrollments/totp", appKey, nil); r.status != http.StatusForbidden {
		t.Errorf("DELETE with an app key: %d", r.status)
	}
	if n := h.enrolled("alice"); n != 1 {
		t.Fatalf("bad step-ups removed something: %d enrollments", n)
	}
	if n := h.auditCount("alice", "verify", "deny"); n != 2 {
		t.Errorf("%d denied verifies audited, want the 2 wrong codes", n)
	}
	if r := h.remove("alice", "totp", map[string]string{"provider": "recovery", "code": codes[0]}); r.status != http.StatusNoContent {
		t.Fatalf("step-up with a recovery code: %d %v", r.status, r.body)
	}
	if n := h.enrolled("alice"); n != 0 {
		t.Errorf("%d enrollments after the removal", n)
	}
	if n := h.auditCount("alice", "enrollment.reset", "deleted"); n != 1 {
		t.Errorf("%d resets audited, want 1", n)
	}
}

// TestRemoveEnrollmentStepUpBurst: 16 wrong step-ups at once get the free
// attempts evaluated and no more; one right code sent 8 times at once
// removes once and is accepted once (a request that comes after the
// removal is answered 204 too: bob has no factor left, the removal is
// done).
func TestRemoveEnrollmentStepUpBurst(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("bob")
	h.clock.Add(30 * time.Second)
	removeBurst := func(n int, code string) map[int]int {
		return burst.Count(n, func(int) int {
			return h.remove("bob", "totp", map[string]string{"provider": "totp", "code": code}).status
		})
	}
	if got := removeBurst(16, "000000"); got[422] != 5 || got[429] != 11 {
		t.Errorf("16 wrong step-ups at once: %v, want 5 evaluated (422) and 11 locked out (429)", got)
	}
	if n := h.enrolled("bob"); n != 1 {
		t.Fatalf("wrong step-ups removed the factor")
	}
	h.clock.Add(time.Hour)
	got := removeBurst(8, h.code(secret))
	// 204 also answers a request that found the factor gone (bob has none
	// left: the removal is done); the audit tells how many removed. Such a
	// request may be the one that drops his recovery codes, audited as
	// the recovery provider's.
	allows, removals := h.auditCount("bob", "verify", "allow"), h.auditCountOf("bob", "enrollment.reset", "deleted", "totp")
	if got[204] < 1 || allows != 1 || removals != 1 {
		t.Errorf("one right code 8 times at once: %v, %d allows and %d removals audited; want one of each", got, allows, removals)
	}
	for status := range got {
		// Removed, or gone by then; replayed; locked out after five replays.
		if status != 204 && status != 422 && status != 429 {
			t.Errorf("unexpected status %d in the burst: %v", status, got)
		}
	}
}

// auditCount counts the user's audit entries of an event and outcome.
func (h *testHost) auditCount(user, event, outcome string) int {
	h.t.Helper()
	return h.auditCountOf(user, event, outcome, "")
}

// auditCountOf is auditCount of one provider's entries ("": any).
func (h *testHost) auditCountOf(user, event, outcome, provider string) int {
	h.t.Helper()
	r := h.do("GET", "/v1/audit?user="+user+"&limit=1000", adminKey, nil)
	n := 0
	for _, e := range r.body["entries"].([]any) {
		m := e.(map[string]any)
		if m["event"] == event && m["outcome"] == outcome && (provider == "" || m["provider"] == provider) {
			n++
		}
	}
	return n
}

// regenerate asks for new recovery codes for user with stepUp (a
// map[string]string of a code, or a map[string]any with a credential).
func (h *testHost) regenerate(user string, stepUp any) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+user+"/recovery-codes", appKey, map[string]any{"audience": "client", "step_up": stepUp})
}

// TestRegenerateRecoveryCodesStepUp: an application gets a user a new
// set of recovery codes only after a step-up the host checks: without
// one, with bad input or a wrong code nothing changes (the wrong code
// counts), a user without a factor is refused before any code is checked,
// and one right code sent 8 times at once issues one new set, whose codes
// then work where the old ones no longer do.
func TestRegenerateRecoveryCodesStepUp(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	old := h.lastRecovery
	h.clock.Add(30 * time.Second)

	if r := h.doRaw("POST", "/v1/users/alice/recovery-codes", appKey, nil); r.status != http.StatusBadRequest {
		t.Errorf("no step-up: %d %v, want 400", r.status, r.body)
	}
	for _, tt := range []struct {
		name, user string
		stepUp     map[string]string
		status     int
		code       string
	}{
		{"a user without a factor", "nobody", map[string]string{"provider": "totp", "code": h.code(secret)}, 404, "not_enrolled"},
		{"a push", "alice", map[string]string{"provider": "totp", "code": "1", "factor": "push"}, 400, "invalid_request"},
		{"no code", "alice", map[string]string{"provider": "totp", "code": ""}, 400, "invalid_request"},
		{"a wrong code", "alice", map[string]string{"provider": "totp", "code": "000000"}, 422, "invalid_code"},
	} {
		if r := h.regenerate(tt.user, tt.stepUp); r.status != tt.status || r.errCode() != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	if n := h.auditCount("alice", "recovery.issued", "issued"); n != 1 {
		t.Fatalf("bad step-ups issued codes: %d sets audited, want the first factor's 1", n)
	}
	if n := h.auditCount("alice", "verify", "deny"); n != 1 {
		t.Errorf("%d denied verifies audited, want the wrong code's 1", n)
	}

	code := h.code(secret)
	var mu sync.Mutex
	var fresh []string
	got := burst.Count(8, func(int) int {
		r := h.regenerate("alice", map[string]string{"provider": "totp", "code": code})
		if r.status == http.StatusCreated {
			mu.Lock()
			for _, c := range r.body["recovery_codes"].([]any) {
				fresh = append(fresh, c.(string))
			}
			mu.Unlock()
		}
		return r.status
	})
	if got[201] != 1 || len(fresh) != 10 {
		t.Fatalf("one right code 8 times at once: %v, want one new set", got)
	}
	for status := range got {
		// Issued; the code replayed; locked out after the replays.
		if status != 201 && status != 422 && status != 429 {
			t.Errorf("unexpected status %d in the burst: %v", status, got)
		}
	}
	if n := h.auditCount("alice", "recovery.issued", "issued"); n != 2 {
		t.Errorf("%d sets audited, want 2", n)
	}
	if v := h.recover("alice", old[0]); v.str("outcome") != "deny" {
		t.Errorf("an old code after the new set: %v", v.body)
	}
	if v := h.recover("alice", fresh[0]); v.str("outcome") != "allow" {
		t.Errorf("a new code: %v", v.body)
	}
}

// TestStepUpRefusesFailmodeAllow: with Duo unreachable and failmode safe,
// a verify is allowed without a code being checked (and audited as such);
// a step-up is not: removing the factor and getting new recovery codes are
// both refused (503 provider_unavailable) and change nothing, so an outage
// never stands in for the user.
func TestStepUpRefusesFailmodeAllow(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "safe"}, "erin")
	old := h.do("GET", "/v1/users/erin/recovery-codes", appKey, nil).body["remaining"]
	stepUp := map[string]string{"provider": "duo", "factor": "passcode", "code": "123456"}
	for _, tt := range []struct{ what, path string }{
		{"new recovery codes", "/v1/users/erin/recovery-codes"},
		{"removing the factor", "/v1/users/erin/enrollments/duo/remove"},
	} {
		emu.Fail(1, duotest.Failure{Path: "/auth/v2/auth", Status: 500})
		r := h.do("POST", tt.path, appKey, map[string]any{"audience": "staff", "step_up": stepUp})
		if r.status != http.StatusServiceUnavailable || r.errCode() != "provider_unavailable" {
			t.Errorf("%s with Duo down and failmode safe: %d %v, want 503 provider_unavailable", tt.what, r.status, r.body)
		}
	}
	if n := h.enrolled("erin"); n != 1 {
		t.Errorf("%d enrollments after the refused removal, want 1", n)
	}
	if n := h.auditCount("erin", "recovery.issued", "issued"); n != 1 {
		t.Errorf("%d sets of recovery codes audited, want the first factor's 1", n)
	}
	if left := h.do("GET", "/v1/users/erin/recovery-codes", appKey, nil).body["remaining"]; left != old {
		t.Errorf("recovery codes left %v, were %v", left, old)
	}
	if n := h.auditCount("erin", "failmode", "allow"); n != 2 {
		t.Errorf("%d failmode allows audited, want the 2 step-ups'", n)
	}
	// Duo back: the same step-up works.
	emu.AddPasscode("erin", "314159")
	if r := h.do("POST", "/v1/users/erin/recovery-codes", appKey, map[string]any{"audience": "staff",
		"step_up": map[string]string{"provider": "duo", "factor": "passcode", "code": "314159"}}); r.status != http.StatusCreated {
		t.Errorf("new codes with Duo answering: %d %v", r.status, r.body)
	}
}

// TestRemoveEnrollmentStepUpRetryFinishes: the application removes
// alice's last factor while the store refuses to drop recovery codes (a
// real SQLite fault: a trigger); the factor is deleted, the codes are
// not, and the answer is an error. The application retries, as told, once
// the store is back: the retry is answered 204 (the removal is done), not
// 404, and finishes the removal: no recovery code is left to back a
// factor alice no longer has, and her next factor is issued codes of its
// own.
func TestRemoveEnrollmentStepUpRetryFinishes(t *testing.T) {
	h := startHost(t, totpClients)
	secret := h.enroll("alice")
	old := h.lastRecovery
	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(h.configPath), "twofactor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TRIGGER codes_down BEFORE DELETE ON recovery_codes BEGIN SELECT RAISE(ABORT, 'recovery codes unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(30 * time.Second)
	// Sent past the harness: its 500 is in no route's document.
	body, _ := json.Marshal(map[string]any{"audience": "client", "step_up": map[string]string{"provider": "totp", "code": h.code(secret)}})
	req, _ := http.NewRequest("POST", h.url+"/v1/users/alice/enrollments/totp/remove", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+appKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if _, err := db.Exec(`DROP TRIGGER codes_down`); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode < 500 || h.enrolled("alice") != 0 {
		t.Fatalf("the removal during the fault: %d, %d enrollments; want an error after the delete", res.StatusCode, h.enrolled("alice"))
	}
	h.clock.Add(30 * time.Second)
	if r := h.remove("alice", "totp", map[string]string{"provider": "totp", "code": h.code(secret)}); r.status != http.StatusNoContent {
		t.Errorf("the retry: %d %v, want 204 (the removal is done)", r.status, r.body)
	}
	if r := h.do("GET", "/v1/users/alice/recovery-codes", appKey, nil); r.body["remaining"] != 0.0 {
		t.Errorf("recovery codes after the retried removal of alice's last factor: %v, want 0", r.body)
	}
	h.clock.Add(30 * time.Second)
	h.enroll("alice")
	if len(h.lastRecovery) != 10 || slices.Contains(h.lastRecovery, old[0]) {
		t.Errorf("alice's next factor was issued %d recovery codes, want a new set of 10", len(h.lastRecovery))
	}
}
