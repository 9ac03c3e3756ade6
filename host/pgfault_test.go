package host_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	secrets := make([]string, users)
	for i := range users {
		user := fmt.Sprintf("user%d", i)
		r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "totp", "audience": "client"})
		secrets[i] = otpSecret(t, r)
		if c := h.do("POST", "/v1/users/"+user+"/enrollments/totp/confirm", appKey, map[string]string{"code": realCode(t, secrets[i], 0)}); c.str("status") != "active" {
			t.Fatalf("confirm %s: %d %v", user, c.status, c.body)
		}
	}

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
