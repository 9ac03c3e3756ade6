package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// Run runs the conformance suite. Every subtest calls open for a fresh,
// empty store and closes it when done.
func Run(t *testing.T, open func(t *testing.T) framework.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s framework.Store)
	}{
		{"PutPending/InsertsVersion1", testPutPendingInserts},
		{"PutPending/ReplacesPending", testPutPendingReplaces},
		{"PutPending/RefusesActive", testPutPendingRefusesActive},
		{"Get/Missing", testGetMissing},
		{"List/OrderedByProvider", testListOrdered},
		{"List/UnknownUserIsEmpty", testListUnknownUser},
		{"List/IsolatesUsers", testListIsolatesUsers},
		{"Update/CurrentVersion", testUpdateCurrentVersion},
		{"Update/StaleVersion", testUpdateStaleVersion},
		{"Update/Missing", testUpdateMissing},
		{"Delete", testDelete},
		{"Delete/Missing", testDeleteMissing},
		{"Concurrent/UpdateSameVersion", testConcurrentUpdate},
		{"Concurrent/PutPending", testConcurrentPutPending},
		{"Concurrent/PutPendingOverActive", testConcurrentPutPendingOverActive},
		{"RoundTrip/Times", testTimesRoundTrip},
		{"RoundTrip/State", testStateRoundTrip},
		{"RoundTrip/StateIsCopied", testStateIsCopied},
		{"RoundTrip/UserIDs", testUserIDs},
		{"Transaction/RoundTrip", testTransactionRoundTrip},
		{"Transaction/OtherUser", testTransactionOtherUser},
		{"Transaction/TakeOnce", testTransactionTakeOnce},
		{"Transaction/ExpiredPushes", testExpiredPushes},
		{"Transaction/ReservePushPrunes", testReservePushPrunes},
		{"Transaction/SettlePush", testSettlePush},
		{"Transaction/SettlePushStale", testSettlePushStale},
		{"Transaction/NeedsEnrollment", testTransactionNeedsEnrollment},
		{"Transaction/GoesWithEnrollment", testTransactionGoesWithEnrollment},
		{"Audit/RoundTrip", testAuditRoundTrip},
		{"Audit/SurvivesReset", testAuditSurvivesReset},
		{"Audit/Concurrent", testAuditConcurrent},
		{"Audit/ManyInOneDecision", testAuditManyInOneDecision},
		{"Audit/TextRefused", testAuditTextRefused},
		{"Attempts/CountAndLock", testAttemptsCountAndLock},
		{"Attempts/Concurrent", testAttemptsConcurrent},
		{"Attempts/ReserveGate", testReserveGate},
		{"Attempts/Refund", testRefund},
		{"Decision/Commit", testCommitDecision},
		{"Decision/UsesRecovery", testDecisionUsesRecovery},
		{"Decision/SameFactors", testSameFactors},
		{"SignInCode/KeptWithEnrollment", testSignInCodeKept},
		{"Attempts/ReserveRacesReset", testReserveRacesReset},
		{"Push/ReserveBurst", testReservePushBurst},
		{"Push/ReserveLimit", testReservePushLimit},
		{"Push/Cancel", testCancelPush},
		{"Push/Resend", testReserveResend},
		{"Push/CountSends", testCountSends},
		{"Push/CountSendsBurst", testCountSendsBurst},
		{"CountStranded", testCountStranded},
		{"Recovery/ReplaceAndUse", testRecoveryReplaceAndUse},
		{"Recovery/ConcurrentUse", testRecoveryConcurrentUse},
		{"Recovery/CountsLeft", testRecoveryCountsLeft},
		{"Recovery/UsesRacingReplacement", testRecoveryUsesRacingReplacement},
		{"Recovery/IssueAudited", testRecoveryIssueAudited},
		{"Recovery/FirstOnce", testFirstRecoveryCodesOnce},
		{"Recovery/DropUnlessActive", testDropRecoveryCodesUnlessActive},
		{"Recovery/IssueActiveOnly", testRecoveryIssueActiveOnly},
		{"Recovery/FirstCodesWithActivation", testFirstCodesWithActivation},
		{"Secrets", testSecrets},
		{"ScanEnrollments", testScanEnrollments},
		{"ResealEnrollments/Batch", testResealBatch},
		{"ResealEnrollments/RacesLogins", testResealRacesLogins},
	}
	tests = append(tests, policyTests...)
	tests = append(tests, bulkTests...)
	tests = append(tests, trustTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(t, s)
		})
	}
}

// concurrency is how many goroutines race in the concurrent subtests: enough
// that a store serialising nothing would almost surely be caught.
const concurrency = 20

// base has nanoseconds and a non-UTC zone so that a store which drops
// sub-second precision or keeps the caller's zone is caught.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+05:30", 5*3600+30*60))

func testPutPendingInserts(t *testing.T, s framework.Store) {
	e := newPending("alice", "totp", []byte("seed"))
	// Whatever the caller claims, a new enrollment starts pending, at a
	// version of the store's (FirstVersion).
	e.Status = framework.StatusActive
	e.Version = 42
	e.ConfirmedAt = at(time.Hour)

	got := mustPut(t, s, e)
	want := stored(e, firstVersion(t, got.Version))
	check(t, "PutPending result", got, want)
	check(t, "Get after PutPending", mustGet(t, s, "alice", "totp"), want)
}

func testPutPendingReplaces(t *testing.T, s framework.Store) {
	first := mustPut(t, s, newPending("alice", "totp", []byte("first")))

	// A restarted enrollment: new secret, new times.
	again := newPending("alice", "totp", []byte("second"))
	again.CreatedAt, again.UpdatedAt = at(time.Hour), at(time.Hour)
	got := mustPut(t, s, again)
	want := stored(again, first.Version+1)
	check(t, "second PutPending result", got, want)
	check(t, "Get after second PutPending", mustGet(t, s, "alice", "totp"), want)

	// A pending row the framework has since written (say, a failed
	// confirmation attempt recorded in its state) is still replaceable,
	// and the version keeps counting from wherever it is.
	upd := got
	upd.State = []byte("attempted")
	upd.UpdatedAt = at(2 * time.Hour)
	upd = mustUpdate(t, s, upd)
	third := newPending("alice", "totp", []byte("third"))
	got = mustPut(t, s, third)
	check(t, "PutPending after Update", got, stored(third, upd.Version+1))
}

func testPutPendingRefusesActive(t *testing.T, s framework.Store) {
	act := active(t, s, "alice", "totp")
	_, err := s.PutPending(t.Context(), newPending("alice", "totp", []byte("attacker")))
	wantErr(t, "PutPending over active", err, framework.ErrAlreadyActive)
	check(t, "active enrollment after refused PutPending", mustGet(t, s, "alice", "totp"), act)

	// The refusal is per (user, provider): the same user can still begin
	// another provider.
	mustPut(t, s, newPending("alice", "duo", []byte("other")))
	check(t, "active enrollment after PutPending of another provider", mustGet(t, s, "alice", "totp"), act)
}

func testGetMissing(t *testing.T, s framework.Store) {
	mustPut(t, s, newPending("alice", "totp", []byte("x")))
	for _, k := range []struct{ user, provider string }{
		{"bob", "totp"},    // unknown user
		{"alice", "duo"},   // known user, other provider
		{"", ""},           // empty keys are just keys
		{"Alice", "totp"},  // ids are case-sensitive
		{"alice", "TOTP"},  // and so are provider names
		{"alice ", "totp"}, // trailing space matters
	} {
		_, err := s.Get(t.Context(), k.user, k.provider)
		wantErr(t, fmt.Sprintf("Get(%q, %q)", k.user, k.provider), err, framework.ErrNotFound)
	}
}

func testListOrdered(t *testing.T, s framework.Store) {
	// Inserted out of order; names chosen so that byte order differs from
	// case-insensitive and locale orders.
	providers := []string{"totp", "duo", "webauthn", "a_b", "Zeta", "a-b", "émoji", "Duo"}
	for i, p := range providers {
		e := newPending("alice", p, []byte{byte(i)})
		mustPut(t, s, e)
	}
	active(t, s, "alice", "totp") // status must not affect listing

	got := mustList(t, s, "alice")
	want := slices.Sorted(slices.Values(providers))
	var names []string
	for _, e := range got {
		names = append(names, e.Provider)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("List providers = %q, want %q", names, want)
	}
	for _, e := range got {
		check(t, "List entry "+e.Provider, e, mustGet(t, s, "alice", e.Provider))
	}
}

func testListUnknownUser(t *testing.T, s framework.Store) {
	for _, user := range []string{"nobody", ""} {
		got, err := s.List(t.Context(), user)
		if err != nil {
			t.Fatalf("List(%q) on an empty store: %v, want no error", user, err)
		}
		if len(got) != 0 {
			t.Fatalf("List(%q) on an empty store = %d entries, want none", user, len(got))
		}
	}
	mustPut(t, s, newPending("alice", "totp", []byte("x")))
	if got := mustList(t, s, "nobody"); len(got) != 0 {
		t.Fatalf("List(unknown user) = %d entries, want none", len(got))
	}
}

func testListIsolatesUsers(t *testing.T, s framework.Store) {
	// Near-identical ids, including LIKE wildcards and an escape character,
	// so that a store matching loosely (prefix, case, pattern) is caught.
	users := []string{"u", "U", "u ", "u%", "u_", `u\`, "uu", "xu"}
	want := map[string][]string{}
	for i, u := range users {
		for j := 0; j <= i%3; j++ {
			p := fmt.Sprintf("p%d-%d", j, i)
			mustPut(t, s, newPending(u, p, []byte(u+"/"+p)))
			want[u] = append(want[u], p)
		}
	}
	for _, u := range users {
		got := mustList(t, s, u)
		var names []string
		for _, e := range got {
			if e.UserID != u {
				t.Errorf("List(%q) returned an enrollment of user %q", u, e.UserID)
			}
			if string(e.State) != u+"/"+e.Provider {
				t.Errorf("List(%q) entry %q has the state of another enrollment", u, e.Provider)
			}
			names = append(names, e.Provider)
		}
		if !slices.Equal(names, want[u]) {
			t.Errorf("List(%q) providers = %q, want %q", u, names, want[u])
		}
	}
}

func testUpdateCurrentVersion(t *testing.T, s framework.Store) {
	p := mustPut(t, s, newPending("alice", "totp", []byte("pending")))

	tests := []struct {
		name   string
		change func(e framework.Enrollment) framework.Enrollment
	}{
		{"pending stays pending, zero ConfirmedAt stays zero", func(e framework.Enrollment) framework.Enrollment {
			e.State = []byte("attempt recorded")
			e.UpdatedAt = at(time.Minute)
			return e
		}},
		{"confirm", func(e framework.Enrollment) framework.Enrollment {
			return activated(e, []byte("confirmed"), at(2*time.Minute))
		}},
		{"active records a used code", func(e framework.Enrollment) framework.Enrollment {
			e.State = []byte("last code 123456")
			e.UpdatedAt = at(3 * time.Minute)
			return e
		}},
		{"admin reset to pending", func(e framework.Enrollment) framework.Enrollment {
			e.Status = framework.StatusPending
			e.State = []byte("reset")
			e.UpdatedAt = at(4 * time.Minute)
			e.ConfirmedAt = time.Time{}
			return e
		}},
	}
	cur := p
	for _, tc := range tests {
		in := tc.change(cur)
		// Update writes only Status, State, UpdatedAt and ConfirmedAt.
		in.CreatedAt = at(100 * time.Hour)

		got, err := s.Update(t.Context(), in)
		if err != nil {
			t.Fatalf("%s: Update: %v", tc.name, err)
		}
		want := in
		want.Version = cur.Version + 1
		want.CreatedAt = p.CreatedAt
		check(t, tc.name+": Update result", got, want)
		check(t, tc.name+": Get after Update", mustGet(t, s, "alice", "totp"), want)
		cur = got
	}
}

func testUpdateStaleVersion(t *testing.T, s framework.Store) {
	p := mustPut(t, s, newPending("alice", "totp", []byte("pending")))
	cur := mustUpdate(t, s, activated(p, []byte("confirmed"), at(time.Minute)))

	for _, v := range []int64{p.Version, cur.Version + 1, 0, -1} {
		in := activated(cur, []byte("stale write"), at(time.Hour))
		in.Version = v
		_, err := s.Update(t.Context(), in)
		wantErr(t, fmt.Sprintf("Update at version %d with stored version %d", v, cur.Version), err, framework.ErrConflict)
		check(t, "Get after conflicting Update", mustGet(t, s, "alice", "totp"), cur)
	}
}

func testUpdateMissing(t *testing.T, s framework.Store) {
	mustPut(t, s, newPending("alice", "duo", []byte("x")))
	e := activated(newPending("alice", "totp", []byte("x")), []byte("y"), at(time.Minute))
	e.Version = 1
	_, err := s.Update(t.Context(), e)
	wantErr(t, "Update of missing enrollment", err, framework.ErrConflict)
	_, err = s.Get(t.Context(), "alice", "totp")
	wantErr(t, "Get after Update of missing enrollment", err, framework.ErrNotFound)
}

func testDelete(t *testing.T, s framework.Store) {
	mustPut(t, s, newPending("alice", "duo", []byte("pending")))
	act := active(t, s, "alice", "totp")
	other := active(t, s, "bob", "totp")

	// Deleting an active enrollment is how an admin reset works.
	if err := s.Delete(t.Context(), "alice", "totp"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(t.Context(), "alice", "totp")
	wantErr(t, "Get after Delete", err, framework.ErrNotFound)
	err = s.Delete(t.Context(), "alice", "totp")
	wantErr(t, "second Delete", err, framework.ErrNotFound)
	_, err = s.Update(t.Context(), act)
	wantErr(t, "Update after Delete", err, framework.ErrConflict)

	// Only that enrollment went.
	if got := mustList(t, s, "alice"); len(got) != 1 || got[0].Provider != "duo" {
		t.Fatalf("List after Delete = %d entries, want only duo", len(got))
	}
	check(t, "other user after Delete", mustGet(t, s, "bob", "totp"), other)

	// Enrolling again starts over, at a version the deleted row never had
	// (FirstVersion: a decision read from the old row must not land on the
	// new one).
	again := newPending("alice", "totp", []byte("again"))
	got := mustPut(t, s, again)
	check(t, "PutPending after Delete", got, stored(again, firstVersion(t, got.Version)))
	if got.Version >= act.Version-1 && got.Version <= act.Version {
		t.Errorf("PutPending after Delete repeats a version of the deleted row: %d (deleted at %d)", got.Version, act.Version)
	}
}

func testDeleteMissing(t *testing.T, s framework.Store) {
	err := s.Delete(t.Context(), "alice", "totp")
	wantErr(t, "Delete on empty store", err, framework.ErrNotFound)
	mustPut(t, s, newPending("alice", "duo", []byte("x")))
	err = s.Delete(t.Context(), "alice", "totp")
	wantErr(t, "Delete of missing provider", err, framework.ErrNotFound)
	if got := mustList(t, s, "alice"); len(got) != 1 {
		t.Fatalf("List after Delete of missing provider = %d entries, want 1", len(got))
	}
}

func testTimesRoundTrip(t *testing.T, s framework.Store) {
	tests := []struct {
		name string
		t    time.Time
	}{
		{"nanoseconds in a positive zone", base},
		{"negative zone", time.Date(2031, time.December, 31, 23, 59, 59, 999999999, time.FixedZone("UTC-09:30", -(9*3600+30*60)))},
		{"UTC microseconds", time.Date(2024, time.February, 29, 12, 0, 0, 123456000, time.UTC)},
		{"unix epoch", time.Unix(0, 0)},
		{"before the epoch", time.Date(1969, time.July, 20, 20, 17, 40, 1000, time.UTC)},
		{"far future", time.Date(2199, time.January, 1, 0, 0, 0, 1000, time.UTC)},
	}
	for i, tc := range tests {
		user := fmt.Sprintf("user%d", i)
		e := newPending(user, "totp", []byte("x"))
		e.CreatedAt, e.UpdatedAt = tc.t, tc.t
		p := mustPut(t, s, e)
		check(t, tc.name+": PutPending result", p, stored(e, firstVersion(t, p.Version)))
		check(t, tc.name+": Get after PutPending", mustGet(t, s, user, "totp"), stored(e, p.Version))

		in := activated(p, []byte("y"), tc.t.Add(time.Second))
		want := in
		want.Version = p.Version + 1
		want.CreatedAt = tc.t
		check(t, tc.name+": Update result", mustUpdate(t, s, in), want)
		check(t, tc.name+": Get after Update", mustGet(t, s, user, "totp"), want)
	}
}

func testStateRoundTrip(t *testing.T, s framework.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// A sealed state is ciphertext: arbitrary bytes, occasionally large.
	big := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range big {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		big[i] = byte(x)
	}
	tests := []struct {
		name  string
		state []byte
		want  []byte
	}{
		{"nil is stored as empty", nil, []byte{}},
		{"empty", []byte{}, []byte{}},
		{"single zero byte", []byte{0}, []byte{0}},
		{"every byte value", all, all},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80}, []byte{0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80}},
		{"SQL-looking text", []byte("'); DROP TABLE enrollments; --"), []byte("'); DROP TABLE enrollments; --")},
		{"64 KiB", big, big},
	}
	for i, tc := range tests {
		// Both write paths: PutPending and Update.
		put := newPending("alice", fmt.Sprintf("put%d", i), tc.state)
		pp := mustPut(t, s, put)
		check(t, tc.name+": PutPending result", pp, stored(put, firstVersion(t, pp.Version)))
		check(t, tc.name+": Get after PutPending", mustGet(t, s, put.UserID, put.Provider), stored(withState(put, tc.want), pp.Version))

		p := mustPut(t, s, newPending("alice", fmt.Sprintf("upd%d", i), []byte("before")))
		in := activated(p, tc.state, at(time.Minute))
		want := withState(in, tc.want)
		want.Version = p.Version + 1
		check(t, tc.name+": Update result", mustUpdate(t, s, in), want)
		check(t, tc.name+": Get after Update", mustGet(t, s, p.UserID, p.Provider), want)
	}
	for _, e := range mustList(t, s, "alice") {
		check(t, "List entry "+e.Provider, e, mustGet(t, s, "alice", e.Provider))
	}
}

func withState(e framework.Enrollment, state []byte) framework.Enrollment {
	e.State = state
	return e
}

func testStateIsCopied(t *testing.T, s framework.Store) {
	buf := []byte("original")
	p := mustPut(t, s, newPending("alice", "totp", buf))
	copy(buf, "XXXXXXXX")
	p.State[0] = 'Y'
	if got := mustGet(t, s, "alice", "totp"); string(got.State) != "original" {
		t.Fatalf("stored state changed with the caller's slices: %q", got.State)
	}

	buf = []byte("updated!")
	u := mustUpdate(t, s, activated(mustGet(t, s, "alice", "totp"), buf, at(time.Minute)))
	copy(buf, "XXXXXXXX")
	u.State[0] = 'Y'
	if got := mustGet(t, s, "alice", "totp"); string(got.State) != "updated!" {
		t.Fatalf("stored state changed with the caller's slices: %q", got.State)
	}
}

func testUserIDs(t *testing.T, s framework.Store) {
	tests := []struct{ name, id string }{
		{"unicode", "Ünïcødé 用户 🔐"},
		{"quotes", `o'brien "the" ` + "`tick`"},
		{"SQL-looking", "x'); DELETE FROM enrollments; --"},
		{"backslash and wildcards", `dom\user%_*?`},
		{"whitespace", " \t spaced \n "},
		{"128 ASCII", strings.Repeat("a", 127) + "z"},
		{"128 runes, multi-byte", strings.Repeat("ß", 64) + strings.Repeat("漢", 63) + "🙂"},
	}
	for _, tc := range tests {
		if n := len([]rune(tc.id)); strings.HasPrefix(tc.name, "128") && n != 128 {
			t.Fatalf("%s: test id has %d runes", tc.name, n)
		}
		e := newPending(tc.id, "totp", []byte(tc.name))
		pe := mustPut(t, s, e)
		check(t, tc.name+": PutPending result", pe, stored(e, firstVersion(t, pe.Version)))
		act := mustUpdate(t, s, activated(mustGet(t, s, tc.id, "totp"), []byte("active "+tc.name), at(time.Minute)))
		check(t, tc.name+": Get", mustGet(t, s, tc.id, "totp"), act)
		list := mustList(t, s, tc.id)
		if len(list) != 1 {
			t.Fatalf("%s: List = %d entries, want 1", tc.name, len(list))
		}
		check(t, tc.name+": List entry", list[0], act)
	}
	// All of them side by side, then each removed by its exact id.
	for _, tc := range tests {
		if err := s.Delete(t.Context(), tc.id, "totp"); err != nil {
			t.Fatalf("%s: Delete: %v", tc.name, err)
		}
		_, err := s.Get(t.Context(), tc.id, "totp")
		wantErr(t, tc.name+": Get after Delete", err, framework.ErrNotFound)
	}
}

// capability returns s as the optional store interface T, or fails the
// test naming what s lacks.
func capability[T any](t *testing.T, s framework.Store) T {
	t.Helper()
	c, ok := s.(T)
	if !ok {
		t.Fatalf("%T does not implement %v", s, reflect.TypeFor[T]())
	}
	return c
}
