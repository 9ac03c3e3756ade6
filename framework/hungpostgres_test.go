package framework_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/postgres"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestChallengeOnHungPostgres: the login's first call, Challenge, and a
// push's poll on a PostgreSQL server that stopped answering, with a
// caller's context that has no deadline (the host passes the HTTP
// request's, which has none; an embedder may pass context.Background()).
// They used to wait as long as the TCP connection lived; now they answer
// store_unavailable (503) at the decision's deadline, shortened here from
// 30 s.
func TestChallengeOnHungPostgres(t *testing.T) {
	const bound = time.Second
	defer framework.SetDecisionTimeout(bound)()
	u, err := url.Parse(pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	f := pgtest.NewFreezer(t, u.Host)
	u.Host = f.Addr()
	s, err := postgres.Create(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fw := startFramework(t, s, newKey(t), newClock(), 0, inProcess())

	f.Freeze()
	defer f.Thaw()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Challenge", func() error {
			_, err := fw.Challenge(context.Background(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff})
			return err
		}},
		{"PollVerification", func() error {
			_, err := fw.PollVerification(context.Background(), "alice", "txid")
			return err
		}},
	} {
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- c.call() }()
		// The bound, then pgx's cancel of the statement (a cancel request
		// the frozen server does not answer either, then the connection's
		// deadline): well under the store's own bound (serverWait, 15 s).
		const waitFor = 10 * time.Second
		select {
		case err := <-done:
			if framework.CodeOf(err) != framework.CodeStoreUnavailable {
				t.Errorf("%s on a hung server: %v (%s) after %v, want store_unavailable", c.name, err, framework.CodeOf(err), time.Since(began))
			}
		case <-time.After(waitFor):
			t.Errorf("%s on a hung server has not answered after %v (the decision's deadline is %v)", c.name, waitFor, bound)
			f.Thaw()
			<-done
		}
	}
}
