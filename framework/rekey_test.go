package framework_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/sdk"
)

// beforeReseal is the real SQLite store with a hook run before each of
// rekey's page writes: a login that writes a row of the page after the
// page was read, at the one moment the batch's compare-and-swap must see.
type beforeReseal struct {
	*sqlite.Store
	hook func()
}

func (s *beforeReseal) ResealEnrollments(ctx context.Context, b []framework.Enrollment) ([]bool, error) {
	if s.hook != nil {
		s.hook()
		s.hook = nil
	}
	return s.Store.ResealEnrollments(ctx, b)
}

// rotated starts a framework on store with current as the key and the
// env's key as the previous one: the replica rekey runs on.
func (e *env) rotated(tb testing.TB, store framework.Store, current []byte) *framework.Framework {
	tb.Helper()
	fw, err := framework.New(tb.Context(), framework.Options{
		Store: store, EncryptionKey: current, PreviousKeys: [][]byte{e.key},
		Providers: []framework.ProviderSpec{inProcess()}, Now: e.clk.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fw.Close() })
	return fw
}

// wantRekeyed checks, on a framework with the new key alone, that every
// user's login of code is now a replay (its write was kept, not
// overwritten with the state rekey read) and that the next code allows
// (the row opens under the new key).
func wantRekeyed(t *testing.T, e *env, store framework.Store, key []byte, secrets map[string]string, code time.Time) {
	t.Helper()
	only := startFramework(t, store, key, e.clk, 0, inProcess())
	for user, secret := range secrets {
		for _, tc := range []struct {
			at   time.Time
			want sdk.Outcome
		}{{code, sdk.Deny}, {code.Add(30 * time.Second), sdk.Allow}} {
			res, err := only.Verify(t.Context(), framework.VerifyInput{UserID: user, Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secret, tc.at)})
			if err != nil || res.Outcome != tc.want {
				t.Errorf("%s at %s under the new key alone: %+v, %v; want %s", user, tc.at.Format(time.TimeOnly), res, err, tc.want)
			}
		}
	}
}

// TestRekeyPageLosesToLogin: logins write two rows of a page between
// rekey's read of it and its write. alice's, by a replica on the new key,
// is sealed under it already: the batch leaves it, and it is not counted.
// bob's, by a replica still on the old key, is under the old key again:
// the batch leaves the login's write, then re-reads the row and re-seals
// that. Neither login's write is lost, every row ends under the new key.
func TestRekeyPageLosesToLogin(t *testing.T) {
	e := newEnv(t, inProcess())
	secrets := map[string]string{}
	for i := range 5 {
		user := fmt.Sprintf("user%d", i)
		secrets[user] = e.enroll(t, user)
	}
	store := &beforeReseal{Store: e.store}
	key2 := newKey(t)
	fw := e.rotated(t, store, key2)
	login := e.clk.Advance(30 * time.Second)
	store.hook = func() {
		for _, l := range []struct {
			fw   *framework.Framework
			user string
		}{{fw, "user1"}, {e.fw, "user3"}} {
			res, err := l.fw.Verify(t.Context(), framework.VerifyInput{UserID: l.user, Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secrets[l.user], login)})
			if err != nil || res.Outcome != sdk.Allow {
				t.Errorf("%s's login during rekey: %+v, %v", l.user, res, err)
			}
		}
	}
	if n, err := fw.Rekey(t.Context()); err != nil || n != 4 {
		t.Fatalf("Rekey = %d, %v; want 4 (every row but user1's, which its login re-sealed)", n, err)
	}
	if store.hook != nil {
		t.Fatal("the hook never ran: no page was written")
	}
	for user := range secrets {
		if user != "user1" && user != "user3" {
			delete(secrets, user) // no login to replay
		}
	}
	wantRekeyed(t, e, e.store, key2, secrets, login)
}

// TestRekeyRacesLogins: a login for every user and rekey, all at once.
// Whatever the interleaving, every login allows, none of their writes is
// lost (the code is a replay afterwards), and after rekey every row opens
// under the new key alone.
func TestRekeyRacesLogins(t *testing.T) {
	e := newEnv(t, inProcess())
	secrets := map[string]string{}
	users := make([]string, 20)
	for i := range users {
		users[i] = fmt.Sprintf("user%02d", i)
		secrets[users[i]] = e.enroll(t, users[i])
	}
	key2 := newKey(t)
	fw := e.rotated(t, e.store, key2)
	login := e.clk.Advance(30 * time.Second)
	_, errs := burst.Run2(len(users)+1, func(i int) (struct{}, error) {
		if i == len(users) {
			_, err := fw.Rekey(t.Context())
			return struct{}{}, err
		}
		res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: users[i], Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secrets[users[i]], login)})
		if err == nil && res.Outcome != sdk.Allow {
			err = fmt.Errorf("login %+v, want allow", res)
		}
		return struct{}{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if c, err := fw.CountSealed(t.Context()); err != nil || c.Previous != 0 || c.Unopenable != 0 || c.Enrollments != len(users) {
		t.Errorf("CountSealed after rekey = %+v, %v; want %d rows, none under the previous key", c, err, len(users))
	}
	wantRekeyed(t, e, e.store, key2, secrets, login)
}
