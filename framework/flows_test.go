package framework_test

import (
	"bytes"
	"database/sql"
	"encoding/base32"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to tamper with the file directly

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// modes runs a test against the TOTP provider in this process and as the
// real plugin binary.
var modes = []struct {
	name string
	spec func(testing.TB) framework.ProviderSpec
}{
	{"in-process", func(testing.TB) framework.ProviderSpec { return inProcess() }},
	{"plugin", func(tb testing.TB) framework.ProviderSpec { return asPlugin(pluginPath(tb)) }},
}

// TestEnrollVerifyFlow walks one user through enrollment and the life of
// a code.
func TestEnrollVerifyFlow(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.spec(t))
			ctx := t.Context()

			secret := e.begin(t, "alice")
			list, err := e.fw.Enrollments(ctx, "alice")
			if err != nil || len(list) != 1 || list[0].Status != framework.StatusPending || !list[0].ConfirmedAt.IsZero() {
				t.Fatalf("Enrollments after begin = %+v, %v; want one pending", list, err)
			}

			if res := e.confirm(t, "alice", codeAt(t, secret, e.clk.Now())); res.Status != framework.StatusActive || res.Reason != "" {
				t.Fatalf("confirm = %+v, want active", res)
			}
			list, err = e.fw.Enrollments(ctx, "alice")
			if err != nil || len(list) != 1 || list[0].Status != framework.StatusActive || !list[0].ConfirmedAt.Equal(start) {
				t.Fatalf("Enrollments after confirm = %+v, %v; want one active, confirmed at %v", list, err, start)
			}

			// Two steps later: a fresh code is accepted exactly once.
			now := e.clk.Advance(2 * period)
			code := codeAt(t, secret, now)
			res := e.verify(t, "alice", code)
			if res.Outcome != sdk.Allow || res.Reason != "" {
				t.Fatalf("first verify = %+v, want allow", res)
			}
			if res.Details["step_offset"] != "0" {
				t.Errorf("details = %v, want step_offset 0", res.Details)
			}
			e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
			e.wantVerify(t, "alice", wrongCode(t, secret, now), sdk.Deny, sdk.ReasonInvalidCode)

			// One step later the used code is still inside the skew window:
			// still replayed, not accepted again.
			e.clk.Advance(period)
			e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
			e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Now()), sdk.Allow, "")
		})
	}
}

func TestVerifyWithoutEnrollment(t *testing.T) {
	e := newEnv(t, inProcess())
	if framework.ReasonNotEnrolled != "not_enrolled" {
		t.Fatalf("ReasonNotEnrolled = %q", framework.ReasonNotEnrolled)
	}
	e.wantVerify(t, "nobody", "123456", sdk.Deny, framework.ReasonNotEnrolled)
	// Another user's enrollment does not count.
	secret := e.enroll(t, "alice")
	e.clk.Advance(period)
	e.wantVerify(t, "nobody", codeAt(t, secret, e.clk.Now()), sdk.Deny, framework.ReasonNotEnrolled)
}

func TestPendingEnrollmentCannotVerify(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.begin(t, "carol")
	code := codeAt(t, secret, e.clk.Now())
	e.wantVerify(t, "carol", code, sdk.Deny, framework.ReasonNotEnrolled)
	e.clk.Advance(period)
	e.wantVerify(t, "carol", codeAt(t, secret, e.clk.Now()), sdk.Deny, framework.ReasonNotEnrolled)
	// The refused verifies consumed nothing: the enrollment still confirms.
	if res := e.confirm(t, "carol", codeAt(t, secret, e.clk.Now())); res.Status != framework.StatusActive {
		t.Fatalf("confirm after refused verifies = %+v, want active", res)
	}
}

func TestConfirmationCodeCannotVerify(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.begin(t, "alice")
	code := codeAt(t, secret, e.clk.Now())
	if res := e.confirm(t, "alice", code); res.Status != framework.StatusActive {
		t.Fatalf("confirm = %+v", res)
	}
	e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
	// Still in the window one step later, and still used.
	e.clk.Advance(period)
	e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
}

func TestConfirmAfterPendingTTL(t *testing.T) {
	const ttl = 10 * time.Minute
	tests := []struct {
		name    string
		elapsed time.Duration
		want    framework.ConfirmResult
	}{
		{"just in time", ttl, framework.ConfirmResult{Status: framework.StatusActive}},
		{"one second late", ttl + time.Second, framework.ConfirmResult{Status: framework.StatusPending, Reason: sdk.ReasonExpired}},
		{"a day late", 24 * time.Hour, framework.ConfirmResult{Status: framework.StatusPending, Reason: sdk.ReasonExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := openStore(t)
			e := &env{clk: newClock(), store: store, key: newKey(t)}
			e.fw = startFramework(t, store, e.key, e.clk, ttl, inProcess())
			secret := e.begin(t, "alice")
			now := e.clk.Advance(tt.elapsed)
			if got := e.confirm(t, "alice", codeAt(t, secret, now)); got.Status != tt.want.Status || got.Reason != tt.want.Reason {
				t.Fatalf("confirm after %v = %+v, want %+v", tt.elapsed, got, tt.want)
			}
			if tt.want.Status != framework.StatusActive {
				e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Deny, framework.ReasonNotEnrolled)
				// Beginning again starts a fresh window.
				secret = e.enroll(t, "alice")
			}
			e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
		})
	}
}

func TestBeginWhenActive(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.enroll(t, "alice")
	_, err := e.fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff})
	wantCode(t, err, framework.CodeAlreadyEnrolled)
	// Nor can an active enrollment be confirmed again.
	_, err = e.fw.ConfirmEnrollment(t.Context(), "alice", "totp", codeAt(t, secret, e.clk.Now()))
	wantCode(t, err, framework.CodeAlreadyEnrolled)

	// Nothing was lost: the original secret still verifies, and the
	// enrollment is still active with its original confirmation time.
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
	list, err := e.fw.Enrollments(t.Context(), "alice")
	if err != nil || len(list) != 1 || list[0].Status != framework.StatusActive || !list[0].ConfirmedAt.Equal(start) {
		t.Fatalf("Enrollments = %+v, %v", list, err)
	}
}

func TestBeginAgainReplacesPending(t *testing.T) {
	e := newEnv(t, inProcess())
	old := e.begin(t, "alice")
	e.clk.Advance(period)
	cur := e.begin(t, "alice")
	if old == cur {
		t.Fatal("a restarted enrollment reused the secret")
	}
	// Find a step where the old secret's code is not also, by chance, one
	// of the new secret's codes in the window (a 3 in a million event).
	collides := func(now time.Time) bool {
		c := codeAt(t, old, now)
		for i := -1; i <= 1; i++ {
			if c == codeAt(t, cur, now.Add(time.Duration(i)*period)) {
				return true
			}
		}
		return false
	}
	for collides(e.clk.Now()) {
		e.clk.Advance(period)
	}
	now := e.clk.Now()
	if res := e.confirm(t, "alice", codeAt(t, old, now)); res.Status != framework.StatusPending || res.Reason != sdk.ReasonInvalidCode {
		t.Fatalf("confirm with the replaced secret = %+v, want pending/invalid_code", res)
	}
	if res := e.confirm(t, "alice", codeAt(t, cur, now)); res.Status != framework.StatusActive {
		t.Fatalf("confirm with the new secret = %+v, want active", res)
	}
	now = e.clk.Advance(2 * period)
	if codeAt(t, old, now) != codeAt(t, cur, now) {
		e.wantVerify(t, "alice", codeAt(t, old, now), sdk.Deny, sdk.ReasonInvalidCode)
	}
	e.wantVerify(t, "alice", codeAt(t, cur, now), sdk.Allow, "")
}

func TestProviderAndAudienceErrors(t *testing.T) {
	e := newEnv(t, inProcess()) // enabled for staff, not for clients
	ctx := t.Context()
	tests := []struct {
		name     string
		provider string
		audience framework.Audience
		want     framework.Code
	}{
		{"audience not enabled", "totp", framework.AudienceClient, framework.CodeAudienceNotAllowed},
		{"unknown provider", "duo", framework.AudienceStaff, framework.CodeUnknownProvider},
		{"unknown provider, bad audience", "duo", "admin", framework.CodeUnknownProvider},
		{"bad audience", "totp", "admin", framework.CodeInvalidRequest},
		{"empty audience", "totp", "", framework.CodeInvalidRequest},
		{"audience is case-sensitive", "totp", "Staff", framework.CodeInvalidRequest},
		{"plural audience", "totp", "clients", framework.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: "alice", Provider: tt.provider, Audience: tt.audience})
			wantCode(t, err, tt.want)
			_, err = e.fw.Verify(ctx, framework.VerifyInput{UserID: "alice", Provider: tt.provider, Audience: tt.audience, Code: "123456"})
			wantCode(t, err, tt.want)
		})
	}
	t.Run("confirm unknown provider", func(t *testing.T) {
		_, err := e.fw.ConfirmEnrollment(ctx, "alice", "duo", "123456")
		wantCode(t, err, framework.CodeUnknownProvider)
	})
	t.Run("confirm without begin", func(t *testing.T) {
		_, err := e.fw.ConfirmEnrollment(ctx, "alice", "totp", "123456")
		wantCode(t, err, framework.CodeNotEnrolled)
	})
	// None of the refusals created anything.
	if list, err := e.fw.Enrollments(ctx, "alice"); err != nil || len(list) != 0 {
		t.Fatalf("Enrollments = %+v, %v; want none", list, err)
	}
}

func TestUserIDValidation(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	ops := []struct {
		name string
		call func(id string) error
	}{
		{"begin", func(id string) error {
			_, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: id, Provider: "totp", Audience: framework.AudienceStaff})
			return err
		}},
		{"confirm", func(id string) error {
			_, err := e.fw.ConfirmEnrollment(ctx, id, "totp", "123456")
			return err
		}},
		{"verify", func(id string) error {
			_, err := e.fw.Verify(ctx, framework.VerifyInput{UserID: id, Provider: "totp", Audience: framework.AudienceStaff, Code: "123456"})
			return err
		}},
		{"enrollments", func(id string) error {
			_, err := e.fw.Enrollments(ctx, id)
			return err
		}},
		{"reset", func(id string) error { return e.fw.ResetEnrollment(ctx, id, "totp") }},
		{"validate", framework.ValidateUserID},
	}
	bad := []struct{ name, id string }{
		{"empty", ""},
		{"129 chars", strings.Repeat("a", 129)},
		{"129 unicode chars", strings.Repeat("é", 129)},
		{"NUL", "ali\x00ce"},
		{"newline", "alice\n"},
		{"tab", "al\tice"},
		{"DEL", "alice\x7f"},
		{"C1 control", "alice\u0085"},
		{"invalid UTF-8", "al\xffice"},
		{"truncated UTF-8", "alic\xc3"},
		{"only invalid UTF-8", "\xc3\x28"},
	}
	for _, b := range bad {
		for _, op := range ops {
			t.Run(b.name+"/"+op.name, func(t *testing.T) {
				wantCode(t, op.call(b.id), framework.CodeInvalidRequest)
			})
		}
	}

	good := []struct{ name, id string }{
		{"one char", "a"},
		{"128 chars", strings.Repeat("a", 128)},
		{"128 two-byte chars", strings.Repeat("é", 128)},
		{"spaces and punctuation", "Alice O'Brien (billing) #42"},
		{"mixed scripts", "ユーザー-Ωμέγα-42"},
	}
	for _, g := range good {
		t.Run("ok/"+g.name, func(t *testing.T) {
			if err := framework.ValidateUserID(g.id); err != nil {
				t.Fatalf("ValidateUserID: %v", err)
			}
			secret := e.enroll(t, g.id)
			e.wantVerify(t, g.id, codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
			if list, err := e.fw.Enrollments(ctx, g.id); err != nil || len(list) != 1 {
				t.Fatalf("Enrollments = %+v, %v", list, err)
			}
			if err := e.fw.ResetEnrollment(ctx, g.id, "totp"); err != nil {
				t.Fatalf("ResetEnrollment: %v", err)
			}
		})
	}
	t.Run("ok/128 three-byte chars", func(t *testing.T) {
		id := strings.Repeat("日", 128) // 384 bytes
		if err := framework.ValidateUserID(id); err != nil {
			t.Fatalf("ValidateUserID: %v", err)
		}
		e.wantVerify(t, id, "123456", sdk.Deny, framework.ReasonNotEnrolled)
		// The id is valid for the framework, but the TOTP provider caps the
		// account label at 256 bytes, and the label defaults to the id: an
		// AccountName is needed to enroll such a user (see the report).
		res, err := e.fw.BeginEnrollment(ctx, framework.EnrollInput{UserID: id, Provider: "totp", Audience: framework.AudienceStaff, AccountName: "short label"})
		if err != nil {
			t.Fatalf("BeginEnrollment with AccountName: %v", err)
		}
		secret := secretOf(t, res.Display)
		if r := e.confirm(t, id, codeAt(t, secret, e.clk.Now())); r.Status != framework.StatusActive {
			t.Fatalf("confirm = %+v", r)
		}
		e.wantVerify(t, id, codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
	})
}

func TestResetEnrollment(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	old := e.enroll(t, "alice")
	if err := e.fw.ResetEnrollment(ctx, "alice", "totp"); err != nil {
		t.Fatalf("ResetEnrollment: %v", err)
	}
	e.wantVerify(t, "alice", codeAt(t, old, e.clk.Advance(period)), sdk.Deny, framework.ReasonNotEnrolled)
	if list, err := e.fw.Enrollments(ctx, "alice"); err != nil || len(list) != 0 {
		t.Fatalf("Enrollments after reset = %+v, %v", list, err)
	}

	tests := []struct{ name, user, provider string }{
		{"already reset", "alice", "totp"},
		{"never enrolled", "bob", "totp"},
		{"unknown provider", "alice", "duo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, e.fw.ResetEnrollment(ctx, tt.user, tt.provider), framework.CodeNotFound)
		})
	}

	// A pending enrollment can be reset too, and the user can then enroll
	// afresh with a new secret.
	e.begin(t, "alice")
	if err := e.fw.ResetEnrollment(ctx, "alice", "totp"); err != nil {
		t.Fatalf("reset pending: %v", err)
	}
	cur := e.enroll(t, "alice")
	if cur == old {
		t.Fatal("re-enrollment reused the old secret")
	}
	e.wantVerify(t, "alice", codeAt(t, cur, e.clk.Advance(period)), sdk.Allow, "")
}

func TestEnrollmentsNeverExposeState(t *testing.T) {
	// By construction: EnrollmentInfo has no field that could carry the
	// state, whatever its name.
	typ := reflect.TypeFor[framework.EnrollmentInfo]()
	for f := range typ.Fields() {
		k := f.Type.Kind()
		if f.Name == "State" || k == reflect.Slice || k == reflect.Array || k == reflect.Interface || k == reflect.Map || k == reflect.Pointer {
			t.Errorf("EnrollmentInfo.%s (%s) could carry provider state", f.Name, f.Type)
		}
	}

	e := newEnv(t, inProcess())
	ctx := t.Context()
	secret := e.enroll(t, "alice")
	e.clk.Advance(period)
	e.begin(t, "bob")

	if list, err := e.fw.Enrollments(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("Enrollments(nobody) = %+v, %v; want empty", list, err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	for _, u := range []struct {
		user   string
		status framework.Status
	}{{"alice", framework.StatusActive}, {"bob", framework.StatusPending}} {
		list, err := e.fw.Enrollments(ctx, u.user)
		if err != nil || len(list) != 1 {
			t.Fatalf("Enrollments(%s) = %+v, %v", u.user, list, err)
		}
		if list[0].Provider != "totp" || list[0].Status != u.status {
			t.Errorf("Enrollments(%s) = %+v, want totp %s", u.user, list[0], u.status)
		}
		dump := fmt.Sprintf("%#v", list)
		if strings.Contains(dump, secret) || bytes.Contains([]byte(dump), raw) || strings.Contains(dump, "secret") {
			t.Errorf("Enrollments(%s) exposes state: %s", u.user, dump)
		}
	}
}

// TestConcurrentVerifySingleUse races one valid code through many
// verifies at once: the store's compare-and-swap must let exactly one in.
// The attempt budget is made large enough for all of them to be evaluated
// (with the default budget the gate would turn most away first; see
// TestGateBurst).
func TestConcurrentVerifySingleUse(t *testing.T) {
	const n = 20
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			e.fw.Close()
			fw, err := framework.New(t.Context(), framework.Options{
				Store: e.store, EncryptionKey: e.key, Providers: []framework.ProviderSpec{mode.spec(t)}, Now: e.clk.Now,
				Lockout: framework.LockoutPolicy{FreeAttempts: 10 * n},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fw.Close() })
			e.fw = fw
			secret := e.enroll(t, "alice")
			code := codeAt(t, secret, e.clk.Advance(period))

			results, errs := burst.Run2(n, func(int) (framework.VerifyResult, error) {
				return e.fw.Verify(t.Context(), framework.VerifyInput{
					UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: code,
				})
			})

			allows, replays := 0, 0
			for i := range n {
				switch {
				case errs[i] != nil:
					t.Errorf("verify %d: %v", i, errs[i])
				case results[i].Outcome == sdk.Allow:
					allows++
				case results[i].Outcome == sdk.Deny && results[i].Reason == sdk.ReasonReplayed:
					replays++
				default:
					t.Errorf("verify %d = %+v", i, results[i])
				}
			}
			if allows != 1 || replays != n-1 {
				t.Fatalf("%d allows and %d replays, want 1 and %d", allows, replays, n-1)
			}
			e.wantVerify(t, "alice", code, sdk.Deny, sdk.ReasonReplayed)
		})
	}
}

// TestCopiedRowIsRefused copies one user's sealed row to another user in
// the database file: the state is bound to its user, so the copy must not
// open, and the victim's factor must be unaffected.
func TestCopiedRowIsRefused(t *testing.T) {
	e := newEnv(t, inProcess())
	ctx := t.Context()
	secret := e.enroll(t, "alice")

	db, err := sql.Open("sqlite", "file:"+e.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, `INSERT INTO enrollments
		(user_id, provider, status, state, version, created_at, updated_at, confirmed_at)
		SELECT 'bob', provider, status, state, version, created_at, updated_at, confirmed_at
		FROM enrollments WHERE user_id = 'alice'`)
	if err != nil {
		t.Fatalf("copy row: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("copied %d rows, want 1", n)
	}
	var same bool
	if err := db.QueryRowContext(ctx, `SELECT a.state = b.state FROM enrollments a, enrollments b
		WHERE a.user_id = 'alice' AND b.user_id = 'bob'`).Scan(&same); err != nil || !same {
		t.Fatalf("the copy does not hold alice's sealed state: %v, %v", same, err)
	}
	if list, err := e.fw.Enrollments(ctx, "bob"); err != nil || len(list) != 1 || list[0].Status != framework.StatusActive {
		t.Fatalf("bob's copied enrollment = %+v, %v", list, err)
	}

	code := codeAt(t, secret, e.clk.Advance(period))
	e.wantVerify(t, "bob", code, sdk.Deny, sdk.ReasonInvalidState)
	e.wantVerify(t, "alice", code, sdk.Allow, "")
	e.wantVerify(t, "bob", codeAt(t, secret, e.clk.Advance(period)), sdk.Deny, sdk.ReasonInvalidState)
}

// TestSecretNotInStoreFiles looks for the TOTP secret, base32 and raw, in
// every file SQLite wrote, while the store is open (log and shared memory
// present) and after it is closed (log checkpointed into the file).
func TestSecretNotInStoreFiles(t *testing.T) {
	e := newEnv(t, inProcess())
	secret := e.enroll(t, "alice")
	e.wantVerify(t, "alice", codeAt(t, secret, e.clk.Advance(period)), sdk.Allow, "")
	e.wantVerify(t, "alice", wrongCode(t, secret, e.clk.Now()), sdk.Deny, sdk.ReasonInvalidCode)

	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) < 16 {
		t.Fatalf("decode secret: %d bytes, %v", len(raw), err)
	}
	check := func(when string) {
		names, all := readDir(t, e.dir)
		if len(all) == 0 {
			t.Fatalf("%s: no data in %v", when, names)
		}
		for _, needle := range [][]byte{[]byte(secret), []byte(strings.ToLower(secret)), raw} {
			if bytes.Contains(all, needle) {
				t.Errorf("%s: a file in %v contains the secret (%d bytes)", when, names, len(needle))
			}
		}
		t.Logf("%s: searched %v (%d bytes)", when, names, len(all))
	}
	check("open")
	e.fw.Close()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}
