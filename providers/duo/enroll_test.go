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

	e.emu.AddUser("known")
	r, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "known"}, Step: sdk.EnrollBegin})
	if err != nil || !r.Done {
		t.Fatalf("known user = %+v, %v", r, err)
	}
	if st, err := parseState(r.State); err != nil || st.Status != statusEnrolled || st.Username != "known" {
		t.Errorf("known user state = %+v, %v", st, err)
	}
	for _, req := range e.emu.Requests() {
		if req.Path == "/auth/v2/enroll" {
			t.Error("a known user was enrolled again")
		}
	}

	e.emu.SetPreauthResult("bypassed", "allow", "")
	r, err = p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "bypassed"}, Step: sdk.EnrollBegin})
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
