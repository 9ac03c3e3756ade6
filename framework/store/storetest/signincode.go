package storetest

import (
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// testSignInCodeKept: PutPending keeps Enrollment.SignInCode, every read
// returns it (Get, List, ScanEnrollments), writes that do not set it
// (an activation, a state update) keep it, a setup begun again replaces
// it (none included), and a bulk insert's rows (an import) have none.
func testSignInCodeKept(t *testing.T, s framework.Store) {
	ctx := t.Context()
	eight := sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 8, MaxLen: 8, Label: "code: from the app"}
	six := sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 6, MaxLen: 6}
	put := func(user string, c sdk.CodeInput) framework.Enrollment {
		t.Helper()
		e := newPending(user, "totp", []byte("pending-"+user))
		e.SignInCode = c
		return mustPut(t, s, e)
	}
	for _, tc := range []struct {
		user string
		code sdk.CodeInput
	}{{"alice", eight}, {"bob", six}, {"carol", sdk.CodeInput{}}} {
		got := put(tc.user, tc.code)
		if got.SignInCode != tc.code {
			t.Errorf("PutPending(%s) returned sign-in code %+v, want %+v", tc.user, got.SignInCode, tc.code)
		}
		upd := activated(got, []byte("active-"+tc.user), at(time.Minute))
		if err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &upd}); err != nil {
			t.Fatalf("activate %s: %v", tc.user, err)
		}
		e := mustGet(t, s, tc.user, "totp")
		e.State = []byte("used-" + tc.user)
		mustUpdate(t, s, e)
		if got := mustGet(t, s, tc.user, "totp"); got.SignInCode != tc.code || got.Status != framework.StatusActive {
			t.Errorf("%s after activation and update: %+v, want sign-in code %+v", tc.user, got, tc.code)
		}
		if l := mustList(t, s, tc.user); len(l) != 1 || l[0].SignInCode != tc.code {
			t.Errorf("List(%s): %+v, want sign-in code %+v", tc.user, l, tc.code)
		}
	}
	seen := 0
	for _, e := range scanAll(t, capability[framework.EnrollmentScanner](t, s)) {
		if want := map[string]sdk.CodeInput{"alice": eight, "bob": six}[e.UserID]; e.SignInCode != want {
			t.Errorf("ScanEnrollments: %s's sign-in code %+v, want %+v", e.UserID, e.SignInCode, want)
		}
		seen++
	}
	if seen != 3 {
		t.Errorf("ScanEnrollments saw %d enrollments, want 3", seen)
	}
	// A pending setup begun again, by a provider that now fixes nothing
	// (or another length), keeps the new begin's, not the first's.
	put("dave", eight)
	if got := put("dave", sdk.CodeInput{}); got.SignInCode != (sdk.CodeInput{}) || mustGet(t, s, "dave", "totp").SignInCode != (sdk.CodeInput{}) {
		t.Errorf("setup begun again with no sign-in code kept the first's: %+v", got.SignInCode)
	}
	put("dave", six)
	if got := mustGet(t, s, "dave", "totp"); got.SignInCode != six {
		t.Errorf("setup begun again with 6 digits: %+v", got.SignInCode)
	}
	// An imported enrollment (no setup, no display) has none.
	b := capability[framework.BulkEnrollmentWriter](t, s)
	in := imported("erin", "totp", at(time.Hour))
	in.SignInCode = eight // not the bulk writer's to keep: an import has no setup
	if err := b.InsertEnrollments(ctx, []framework.Enrollment{in}); err != nil {
		t.Fatalf("InsertEnrollments: %v", err)
	}
	if got := mustGet(t, s, "erin", "totp"); !got.SignInCode.IsZero() {
		t.Errorf("imported enrollment's sign-in code %+v, want none", got.SignInCode)
	}
}

// SignInCodeFromEarlierRelease checks a store upgraded from the release
// before Enrollment.SignInCode, which held alice's active "totp" and
// bob's pending one: both read back with no sign-in code (the provider's
// Info.CodeInput is offered), and a setup begun again keeps its own.
func SignInCodeFromEarlierRelease(t *testing.T, s framework.Store) {
	t.Helper()
	for _, u := range []string{"alice", "bob"} {
		if e := mustGet(t, s, u, "totp"); !e.SignInCode.IsZero() {
			t.Errorf("%s's enrollment after the upgrade has sign-in code %+v, want none", u, e.SignInCode)
		}
	}
	e := newPending("bob", "totp", []byte("again"))
	e.SignInCode = sdk.CodeInput{Kind: sdk.CodeDigits, MinLen: 8, MaxLen: 8}
	mustPut(t, s, e)
	if got := mustGet(t, s, "bob", "totp"); got.SignInCode != e.SignInCode {
		t.Errorf("setup begun again after the upgrade: sign-in code %+v, want %+v", got.SignInCode, e.SignInCode)
	}
}
