package duo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

func TestEnrollNewUser(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	alice := sdk.User{ID: "alice@example.com", AccountName: "Alice"}
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: alice, Step: sdk.EnrollBegin})
	if err != nil {
		t.Fatal(err)
	}
	d := begin.Display
	if begin.Done || d.BarcodeURL == "" || d.ActivationCode == "" || d.ActivationURL == "" ||
		!strings.Contains(d.Instructions, "Duo Mobile") {
		t.Fatalf("begin = %+v", begin)
	}
	var st stateV1
	if err := json.Unmarshal(begin.State, &st); err != nil {
		t.Fatal(err)
	}
	if st.V != 1 || st.Status != statusPending || st.Username != alice.ID || st.UserID == "" ||
		st.ActivationCode != d.ActivationCode || st.Expires == 0 {
		t.Errorf("pending state = %+v", st)
	}
	if r := e.lastRequest("/auth/v2/enroll"); r.Params.Get("username") != alice.ID || !r.Authorized {
		t.Errorf("enroll request = %+v", r)
	}

	// Not yet activated: waiting.
	fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: alice, Step: sdk.EnrollFinish, State: begin.State})
	if err != nil || fin.Done || fin.Reason != sdk.ReasonWaiting {
		t.Fatalf("finish before activation = %+v, %v", fin, err)
	}
	// Verifying with a pending enrollment is refused.
	_, err = p.Verify(ctx, sdk.VerifyRequest{User: alice, State: begin.State})
	wantKind(t, err, sdk.KindInvalidState, "")

	if err := e.emu.ActivateEnrollment(d.ActivationCode); err != nil {
		t.Fatal(err)
	}
	fin, err = p.Enroll(ctx, sdk.EnrollRequest{User: alice, Step: sdk.EnrollFinish, State: begin.State})
	if err != nil || !fin.Done || fin.Reason != "" {
		t.Fatalf("finish after activation = %+v, %v", fin, err)
	}
	done, err := parseState(fin.State)
	if err != nil || done.Status != statusEnrolled || done.UserID != st.UserID || done.ActivationCode != "" {
		t.Errorf("enrolled state = %+v, %v", done, err)
	}
	// Finishing again is harmless.
	again, err := p.Enroll(ctx, sdk.EnrollRequest{User: alice, Step: sdk.EnrollFinish, State: fin.State})
	if err != nil || !again.Done {
		t.Errorf("second finish = %+v, %v", again, err)
	}
	// The new device works: a push, approved at once.
	e.emu.ScriptPush(alice.ID, pushAllow)
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: alice, State: fin.State, Factor: "push"})
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: alice, State: fin.State, TxID: r.TxID})
	wantOutcome(t, r, err, sdk.Allow, "")
}

func TestEnrollExpired(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	u := sdk.User{ID: "dave"}
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollBegin})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.ExpireEnrollment(begin.Display.ActivationCode); err != nil {
		t.Fatal(err)
	}
	fin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollFinish, State: begin.State})
	if err != nil || fin.Done || fin.Reason != sdk.ReasonExpired {
		t.Errorf("finish after expiry = %+v, %v", fin, err)
	}
}

func TestEnrollPreauthResults(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)

	if st, err := parseState(e.enrolled(p, "known")); err != nil || st.Status != statusEnrolled || st.Username != "known" {
		t.Errorf("known user state = %+v, %v", st, err)
	}
	for _, req := range e.emu.Requests() {
		if req.Path == "/auth/v2/enroll" {
			t.Error("a known user was enrolled again")
		}
	}

	e.emu.SetPreauthResult("bypassed", "allow", "")
	r, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "bypassed"}, Step: sdk.EnrollBegin})
	if err != nil || !r.Done {
		t.Fatalf("bypass user = %+v, %v", r, err)
	}
	if st, err := parseState(r.State); err != nil || st.Status != statusBypass {
		t.Errorf("bypass state = %+v, %v", st, err)
	}

	e.emu.SetPreauthResult("denied", "deny", "Your account is disabled.")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "denied"}, Step: sdk.EnrollBegin})
	se := wantKind(t, err, sdk.KindInvalidRequest, "user")
	if !strings.Contains(se.Message, "Your account is disabled.") {
		t.Errorf("deny message = %q, want Duo's status_msg", se.Message)
	}
}

func TestEnrollRejects(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	_, err := p.Enroll(ctx, sdk.EnrollRequest{Step: sdk.EnrollBegin})
	wantKind(t, err, sdk.KindInvalidRequest, "user")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "a\nb"}, Step: sdk.EnrollBegin})
	wantKind(t, err, sdk.KindInvalidRequest, "user")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "a"}, Step: "middle"})
	wantKind(t, err, sdk.KindInvalidRequest, "step")
	_, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "a"}, Step: sdk.EnrollFinish, State: []byte("{}")})
	wantKind(t, err, sdk.KindInvalidState, "")
	other := (&stateV1{Status: statusEnrolled, Username: "b"}).marshal()
	_, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "a"}, Step: sdk.EnrollFinish, State: other})
	wantKind(t, err, sdk.KindInvalidState, "")
}

func TestEnrollUnavailable(t *testing.T) {
	e := newEnv(t)
	p := e.activated(sdk.Settings{"failmode": "safe"})
	e.emu.Fail(1, failure500("/auth/v2/preauth"))
	_, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "erin"}, Step: sdk.EnrollBegin})
	// Enrollment has no failmode.
	wantKind(t, err, sdk.KindUnavailable, "")
}

// TestEnrollKnownUserNeedsPasscode: Duo knowing the user is not proof
// that the device Duo holds is the user's. An intruder who began a setup
// for dana (while the host let them) activated it with their own phone
// and never finished; dana's own setup later finds Duo knowing "dana".
// Begin adopts nothing: the state is "confirming", which verifies nothing
// (a push would go to the intruder's phone), until a passcode typed into
// this setup is accepted by Duo. No code, a malformed one (never sent to
// Duo) or a wrong one is invalid_code; Duo unavailable is an error;
// Duo putting the user in bypass meanwhile proves nothing either.
func TestEnrollKnownUserNeedsPasscode(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	dana := sdk.User{ID: "dana"}

	intruder, err := p.Enroll(ctx, sdk.EnrollRequest{User: dana, Step: sdk.EnrollBegin})
	if err != nil || intruder.Done || intruder.Display.ActivationCode == "" {
		t.Fatalf("the intruder's begin = %+v, %v", intruder, err)
	}
	if err := e.emu.ActivateEnrollment(intruder.Display.ActivationCode); err != nil {
		t.Fatal(err)
	}

	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: dana, Step: sdk.EnrollBegin})
	if err != nil || begin.Done || begin.Display.ActivationCode != "" || !strings.Contains(begin.Display.Instructions, "passcode") {
		t.Fatalf("begin for a user Duo knows = %+v, %v; want not done, asking for a passcode", begin, err)
	}
	if st, err := parseState(begin.State); err != nil || st.Status != statusConfirming || st.Username != dana.ID || st.UserID != "" {
		t.Fatalf("state after begin = %+v, %v; want confirming", st, err)
	}
	e.emu.ScriptPush(dana.ID, pushAllow) // the intruder would approve it
	_, err = p.Verify(ctx, sdk.VerifyRequest{User: dana, State: begin.State, Factor: "push"})
	wantKind(t, err, sdk.KindInvalidState, "")

	finish := func(code string) (sdk.EnrollResponse, error) {
		return p.Enroll(ctx, sdk.EnrollRequest{User: dana, Step: sdk.EnrollFinish, State: begin.State, Code: code})
	}
	auths := func() int {
		n := 0
		for _, r := range e.emu.Requests() {
			if r.Path == "/auth/v2/auth" {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name, code string
		sent       bool
	}{
		{"no code", "", false},
		{"not letters and digits", "12-34!", false},
		{"too long", strings.Repeat("7", maxPasscodeLen+1), false},
		{"wrong", "000000", true},
	} {
		before := auths()
		r, err := finish(tc.code)
		if err != nil || r.Done || r.Reason != sdk.ReasonInvalidCode {
			t.Errorf("%s: finish = %+v, %v; want not done, invalid_code", tc.name, r, err)
		}
		if sent := auths() > before; sent != tc.sent {
			t.Errorf("%s: sent to Duo = %v, want %v", tc.name, sent, tc.sent)
		}
	}

	e.emu.SetPreauthResult(dana.ID, "allow", "") // a Duo admin bypasses dana meanwhile
	if r, err := finish("000000"); err != nil || r.Done || r.Reason != sdk.ReasonExpired {
		t.Errorf("finish while Duo bypasses the user = %+v, %v; want not done, expired (begin again)", r, err)
	}
	e.emu.SetPreauthResult(dana.ID, "auth", "")

	e.emu.Fail(1, failure500("/auth/v2/auth"))
	_, err = finish("271828")
	wantKind(t, err, sdk.KindUnavailable, "")

	e.emu.AddPasscode(dana.ID, "314159")
	r, err := finish("314 159")
	if err != nil || !r.Done {
		t.Fatalf("finish with a passcode Duo accepts = %+v, %v", r, err)
	}
	if st, err := parseState(r.State); err != nil || st.Status != statusEnrolled || st.Username != dana.ID {
		t.Errorf("state after the passcode = %+v, %v", st, err)
	}
	if q := e.lastRequest("/auth/v2/auth").Params; q.Get("factor") != "passcode" || q.Get("passcode") != "314159" || q.Get("username") != dana.ID {
		t.Errorf("auth request = %v", q)
	}
	if again, err := p.Enroll(ctx, sdk.EnrollRequest{User: dana, Step: sdk.EnrollFinish, State: r.State}); err != nil || !again.Done {
		t.Errorf("finishing again = %+v, %v", again, err)
	}
}
