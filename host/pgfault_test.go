package host_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/internal/burst"
)

// TestPostgresConnectionsTerminated: a real `twofactor serve` on
// PostgreSQL under a verify load while every backend of the host is
// terminated by the server (pg_terminate_backend, as a failover or a
// PgBouncer restart does) every 0.5 s for 10 s. No request answers 500
// (a lost connection is retried when safe, else 503 store_unavailable),
// no code is accepted twice, and the host serves normally afterwards.
func TestPostgresConnectionsTerminated(t *testing.T) {
	dsn := postgresDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	app := "tf_term_" + hex.EncodeToString(b)
	dsn += "&application_name=" + app
	config, _ := postgresConfigAt(t, dsn, totpClients)
	h := startReplica(t, config)
	defer h.stop()

	const users = 12
	secrets := enrollTOTPUsers(t, h, users)

	admin, err := pgx.Connect(context.Background(), os.Getenv("TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	const duration = 10 * time.Second
	stop := make(chan struct{})
	var terminated atomic.Int64
	var killer sync.WaitGroup
	killer.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		end := time.After(duration)
		for {
			select {
			case <-end:
				close(stop)
				return
			case <-tick.C:
				var n int64
				if err := admin.QueryRow(context.Background(),
					`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
					t.Error(err)
				}
				terminated.Add(n)
			}
		}
	})

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
	wg.Wait()
	killer.Wait()
	t.Logf("%d backends terminated; answers: %v", terminated.Load(), statuses)
	if terminated.Load() == 0 {
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
			b := make([]byte, 6)
			rand.Read(b)
			app := "tf_held_" + hex.EncodeToString(b)
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
			done := make(chan struct{})
			var terminated atomic.Int64
			var killer sync.WaitGroup
			if tc.terminate {
				admin, err := pgx.Connect(ctx, os.Getenv("TEST_POSTGRES_DSN"))
				if err != nil {
					t.Fatal(err)
				}
				defer admin.Close(ctx)
				// A backend of the host waiting for a lock is a batch of
				// decisions: terminate it while it waits.
				killer.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						var n int64
						if err := admin.QueryRow(ctx, `
							SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
							WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n); err != nil {
							t.Error(err)
							return
						}
						terminated.Add(n)
					}
				})
			}
			rs, took := loginAll()
			close(done)
			killer.Wait()
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
			if tc.terminate && terminated.Load() == 0 {
				t.Fatal("no batch was terminated while it waited: the test proved nothing")
			}
			t.Logf("answered after %v at most; %d backends terminated", slices.Max(took), terminated.Load())

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
