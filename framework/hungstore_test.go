package framework_test

import (
	"context"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// hungReservation is a store whose attempt reservations do not answer:
// each waits until its context ends and fails as the PostgreSQL store
// does then (store unavailable, the context's error), as on a server
// that stopped answering.
type hungReservation struct {
	framework.Store
}

func (s hungReservation) ReserveAttempt(ctx context.Context, _ string, _ framework.Budget, _ time.Time, _ func(int) time.Time) (framework.Reservation, bool, error) {
	<-ctx.Done()
	return framework.Reservation{}, false, framework.StoreUnavailable(ctx.Err())
}

// TestLoginOnHungStore: a login whose reservation the store never answers
// ends when the decision's deadline does, with store unavailable (503
// with Retry-After), not internal (500): its audit entry, which can then
// no longer be queued, fails because the store did not answer in time.
func TestLoginOnHungStore(t *testing.T) {
	defer framework.SetDecisionTimeout(300 * time.Millisecond)()
	store, path := openStore(t)
	e := &env{clk: newClock(), store: store, db: path, key: newKey(t)}
	e.fw = startFramework(t, store, e.key, e.clk, 0, inProcess())
	secret := e.begin(t, "alice")
	e.confirm(t, "alice", codeAt(t, secret, e.clk.Now()))
	e.clk.Advance(30 * time.Second)

	hung := startFramework(t, hungReservation{store}, e.key, e.clk, 0, inProcess())
	for _, in := range []framework.VerifyInput{
		{UserID: "alice", Provider: "totp", Audience: framework.AudienceStaff, Code: codeAt(t, secret, e.clk.Now())},
		{UserID: "alice", Provider: framework.RecoveryProvider, Audience: framework.AudienceStaff, Code: "AAAA-BBBB-CCCC-DDDD"},
	} {
		res, err := hung.Verify(t.Context(), in)
		if res.Outcome == sdk.Allow || framework.CodeOf(err) != framework.CodeStoreUnavailable {
			t.Errorf("%s on a hung store: %+v, %v (%s); want store_unavailable", in.Provider, res, err, framework.CodeOf(err))
		}
	}
}
