package host_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgterminate"
)

// TestPostgresConnectionsTerminated: a real `twofactor serve` on
// PostgreSQL under a verify load while every backend of the host is
// terminated by the server (pg_terminate_backend, as a failover or a
// PgBouncer restart does) every 0.5 s for 10 s. No request answers 500
// (a lost connection is retried when safe, else 503 store_unavailable),
// no code is accepted twice, and the host serves normally afterwards.
func TestPostgresConnectionsTerminated(t *testing.T) {
	dsn := postgresDSN(t)
	app := pgterminate.AppName("tf_term")
	dsn += "&application_name=" + app
	config, _ := postgresConfigAt(t, dsn, totpClients)
	h := startReplica(t, config)
	defer h.stop()

	const users = 12
	secrets := enrollTOTPUsers(t, h, users)

	const duration = 10 * time.Second
	killer := pgterminate.Start(t, os.Getenv("TEST_POSTGRES_DSN"), pgterminate.Options{App: app, Every: 500 * time.Millisecond})
	stop := make(chan struct{})

	var (
		mu       sync.Mutex
		allowed  = map[string]int{} // user/code → allows
		statuses = map[string]int{}
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				u := i % users
				user := fmt.Sprintf("user%d", u)
				// The next step's code, inside the skew: its first
				// verify allows, every later one must be a replay.
				code := realCode(t, secrets[u], 30*time.Second)
				r := h.verify(user, code)
				key := fmt.Sprint(r.status, " ", r.str("outcome"), r.errCode())
				mu.Lock()
				statuses[key]++
				if r.str("outcome") == "allow" {
					allowed[user+"/"+code]++
				}
				mu.Unlock()
				switch {
				case r.status == http.StatusOK, r.status == http.StatusTooManyRequests:
				case r.status == http.StatusServiceUnavailable && r.errCode() == "store_unavailable" && r.header.Get("Retry-After") != "":
				default:
					t.Errorf("verify under terminations: %d %v", r.status, r.body)
				}
			}
		})
	}
	// The load runs for the duration; the terminations end with it, and
	// the requests in flight then finish on a quiet server.
	<-time.After(duration)
	close(stop)
	terminated := killer.Stop()
	wg.Wait()
	t.Logf("%d backends terminated; answers: %v", terminated, statuses)
	if terminated == 0 {
		t.Fatal("no backend was terminated: the test proved nothing")
	}
	for k, n := range allowed {
		if n > 1 {
			t.Errorf("code %s accepted %d times", k, n)
		}
	}
	if len(allowed) < users {
		t.Errorf("only %d of %d users' codes were allowed under the terminations", len(allowed), users)
	}
	// Afterwards: ready, and a fresh code of a user not locked out works.
	h.pollStatus("/readyz", http.StatusOK, 5*time.Second)
	r := h.do("POST", "/v1/users/fresh/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
	if r.status != http.StatusCreated {
		t.Fatalf("enroll after the terminations: %d %v", r.status, r.body)
	}
}

// TestPostgresDecisionsUnderHeldLock: a real `twofactor serve` on
// PostgreSQL; another session holds the row locks of every enrollment (a
// replica's stuck transaction, a backup), which the logins' reservations
// do not need but their decisions' pipelined batch does. Valid first-use
// codes then answer 503 store_unavailable with Retry-After, never an
// allow, whether the batch's wait ends by the lock_timeout the DSN
// configures or by its backend being terminated while it waits; and each
// within the bound (no later than one lock_timeout per batch the logins
// can form, far below the statement_timeout a stuck wait would hit). Once
// the lock is gone each of those same codes lets its user in once:
// nothing of the failed decisions was committed.
func TestPostgresDecisionsUnderHeldLock(t *testing.T) {
	const users = 6
	const lockTimeout = 500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		terminate bool
	}{{"lock timeout", false}, {"terminated mid-batch", true}} {
		t.Run(tc.name, func(t *testing.T) {
			schemaDSN := postgresDSN(t)
			app := pgterminate.AppName("tf_held")
			dsn := fmt.Sprintf("%s&application_name=%s&lock_timeout=%d", schemaDSN, app, lockTimeout.Milliseconds())
			config, _ := postgresConfigAt(t, dsn, totpClients)
			h := startReplica(t, config)
			defer h.stop()
			secrets := enrollTOTPUsers(t, h, users)
			// The next step's code: a first use, inside the skew.
			codes := make([]string, users)
			for i := range users {
				codes[i] = realCode(t, secrets[i], 30*time.Second)
			}
			loginAll := func() ([]response, []time.Duration) {
				return burst.Run2(users, func(i int) (response, time.Duration) {
					began := time.Now()
					r := h.verify(fmt.Sprintf("user%d", i), codes[i])
					return r, time.Since(began)
				})
			}

			ctx := context.Background()
			tx := holdLock(t, schemaDSN, `SELECT count(*) FROM (SELECT 1 FROM enrollments FOR UPDATE) AS locked`)
			var killer *pgterminate.Loop
			if tc.terminate {
				// A backend of the host waiting for a lock is a batch of
				// decisions: terminate it while it waits.
				killer = pgterminate.Start(t, os.Getenv("TEST_POSTGRES_DSN"), pgterminate.Options{App: app, LockWaiters: true})
			}
			rs, took := loginAll()
			terminated := killer.Stop()
			bound := users*lockTimeout + time.Second
			for i, r := range rs {
				if r.status != http.StatusServiceUnavailable || r.errCode() != "store_unavailable" || r.header.Get("Retry-After") == "" {
					t.Errorf("user%d's login under the held lock: %d %v (Retry-After %q); want 503 store_unavailable with Retry-After",
						i, r.status, r.body, r.header.Get("Retry-After"))
				}
				if took[i] > bound {
					t.Errorf("user%d's login answered after %v; the bound is %v", i, took[i], bound)
				}
			}
			if tc.terminate && terminated == 0 {
				t.Fatal("no batch was terminated while it waited: the test proved nothing")
			}
			t.Logf("answered after %v at most; %d backends terminated", slices.Max(took), terminated)

			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			h.pollStatus("/readyz", http.StatusOK, 5*time.Second)
			rs, _ = loginAll()
			for i, r := range rs {
				if r.status != http.StatusOK || r.str("outcome") != "allow" {
					t.Errorf("user%d's code after the lock: %d %v, want allow (the failed decision wrote nothing)", i, r.status, r.body)
				}
			}
			rs, _ = loginAll()
			for i, r := range rs {
				if r.str("outcome") != "deny" || r.str("reason") != "replayed" {
					t.Errorf("user%d's code a second time: %d %v, want deny/replayed", i, r.status, r.body)
				}
			}
		})
	}
}

// enrollTOTPUsers enrolls and confirms TOTP for user0 .. user(n-1) and
// returns their secrets.
func enrollTOTPUsers(t *testing.T, h *testHost, n int) []string {
	t.Helper()
	secrets := make([]string, n)
	for i := range n {
		secrets[i] = enrollTOTPOn(t, h, fmt.Sprintf("user%d", i))
	}
	return secrets
}
