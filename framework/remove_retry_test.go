package framework_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
	"github.com/twofactor/twofactor/sdk"
)

// refuseCodeDeletes is a real fault of the SQLite store at path, as
// refuseDeviceDeletes: a trigger fails every delete of a recovery code
// until the returned function drops it.
func refuseCodeDeletes(t *testing.T, path string) (restore func()) {
	t.Helper()
	return sqliteTrigger(t, path, "codes_down", "BEFORE DELETE ON recovery_codes", "recovery codes unavailable")
}

// refuseCodeDeletesPG is refuseCodeDeletes on the PostgreSQL schema dsn
// names (its search_path).
func refuseCodeDeletesPG(t *testing.T, dsn string) (restore func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), `CREATE FUNCTION codes_down() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'recovery codes unavailable'; END $$;
		CREATE TRIGGER codes_down BEFORE DELETE ON recovery_codes FOR EACH ROW EXECUTE FUNCTION codes_down()`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.Exec(t.Context(), `DROP TRIGGER codes_down ON recovery_codes`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFactorRemovalRetryFinishesIt: alice removes her last factor on
// her security page while the store refuses to drop recovery codes; the
// factor is deleted, the codes are not, and she is answered an error. She
// tries again, as told, once the store is back (a burst: a page's retry,
// a double click). The retry must finish the removal: answered as done,
// not "no such factor", and her recovery codes dropped. Before, it
// stopped at not_found before anything was cleaned up: the old codes
// (perhaps the sheet she removed the factor over) outlived the factor,
// and her next factor found codes and was issued none, the old set
// backing it.
func TestFactorRemovalRetryFinishesIt(t *testing.T) {
	store, path := openStore(t)
	factorRemovalRetry(t, []framework.Store{store, store}, func() func() { return refuseCodeDeletes(t, path) })
}

// TestFactorRemovalRetryFinishesItAcrossReplicas: the same with the
// retries split over two replicas on one PostgreSQL database.
func TestFactorRemovalRetryFinishesItAcrossReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	factorRemovalRetry(t, pgReplicasAt(t, dsn, 2), func() func() { return refuseCodeDeletesPG(t, dsn) })
}

// removalRetries is how many retries of the removal race.
const removalRetries = 8

func factorRemovalRetry(t *testing.T, stores []framework.Store, refuse func() (restore func())) {
	clk, key := newClock(), newKey(t)
	var fws []*framework.Framework
	for _, s := range stores {
		fws = append(fws, startFramework(t, s, key, clk, 0, inProcess()))
	}
	e := &env{fw: fws[0], clk: clk, key: key}
	secret := e.begin(t, "alice")
	old := e.confirm(t, "alice", codeAt(t, secret, clk.Now())).RecoveryCodes
	if len(old) != 10 {
		t.Fatalf("alice's first factor issued %d recovery codes, want 10", len(old))
	}
	// Carol keeps her factor: a removal of one she does not have must
	// touch nothing of hers.
	e.clk.Advance(period)
	carol := e.enroll(t, "carol")
	stepUp := func(user, code string) framework.VerifyInput {
		return framework.VerifyInput{UserID: user, Provider: "totp", Audience: framework.AudienceStaff, Code: code}
	}

	clk.Advance(period)
	restore := refuse()
	res, err := fws[0].RemoveEnrollmentStepUp(t.Context(), "totp", stepUp("alice", codeAt(t, secret, clk.Now())))
	restore()
	if err == nil {
		t.Fatalf("the removal with the store refusing to drop recovery codes: %s/%s, no error: the test proved nothing", res.Outcome, res.Reason)
	}
	t.Logf("the removal during the fault: %v", err)
	if _, err := stores[0].Get(t.Context(), "alice", "totp"); err == nil {
		t.Fatal("the failed removal left the factor: the fault came before the delete, the test proved nothing")
	}

	clk.Advance(period)
	results, errs := burst.Run2(removalRetries, func(i int) (framework.VerifyResult, error) {
		return fws[i%len(fws)].RemoveEnrollmentStepUp(t.Context(), "totp", stepUp("alice", codeAt(t, secret, clk.Now())))
	})
	for i := range results {
		if errs[i] != nil || results[i].Outcome != sdk.Allow {
			t.Errorf("retry %d of the removal: %s/%s, %v; want it done (allow)", i, results[i].Outcome, results[i].Reason, errs[i])
		} else if results[i].Answered() {
			t.Errorf("retry %d: an allow that checked no code passes as answered", i)
		}
	}
	if n, err := fws[1].RecoveryCodesLeft(t.Context(), "alice"); err != nil || n != 0 {
		t.Errorf("alice has %d recovery codes (%v) after the retried removal of her last factor, want 0", n, err)
	}

	// Her next factor gets codes of its own; the old ones let no one in.
	clk.Advance(period)
	e.fw = fws[1]
	secret = e.begin(t, "alice")
	if got := e.confirm(t, "alice", codeAt(t, secret, clk.Now())).RecoveryCodes; len(got) != 10 {
		t.Errorf("alice's new factor was issued %d recovery codes, want 10 (not the old set backing it)", len(got))
	}
	r, err := fws[0].Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: framework.RecoveryProvider,
		Audience: framework.AudienceStaff, Code: old[0]})
	if err != nil || r.Outcome == sdk.Allow {
		t.Errorf("an old recovery code after the removal: %s/%s, %v; want deny", r.Outcome, r.Reason, err)
	}

	// A user with an active factor left: "no such factor", nothing dropped.
	_, err = fws[1].RemoveEnrollmentStepUp(t.Context(), "webauthn", stepUp("carol", codeAt(t, carol, clk.Now())))
	if framework.CodeOf(err) != framework.CodeNotFound {
		t.Errorf("carol removing a factor she does not have: %v, want not_found", err)
	}
	if n, err := fws[0].RecoveryCodesLeft(t.Context(), "carol"); err != nil || n != 10 {
		t.Errorf("carol has %d recovery codes (%v), want her 10 untouched", n, err)
	}
}
