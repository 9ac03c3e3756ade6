package host_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
)

// Two guarantees of the attempt gate that one host holds, held across two
// host processes sharing one PostgreSQL: a Duo activation poll spends
// nothing of the budget while a guess spends exactly one attempt, and a
// reservation the server does not answer ends within its bound with no
// login let in without one.

// factorFailures is user's count on the factors' budget as the store
// holds it: failures and reservations in flight (none once every answer
// is in).
func factorFailures(t *testing.T, dsn, user string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT coalesce(sum(failures), 0) FROM attempts WHERE user_id = $1 AND budget = 'factor'`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDuoActivationPollsSpendNothingReplicas: TestDuoActivationPollsSpendNothing
// over two replicas. A burst of polls split between them is held by the
// gate (each waiting or 429) and leaves the budget as it was, as do more
// polls one after another than the budget has free attempts; a burst of
// confirmations with a code, split the same way, is counted once each:
// exactly the free attempts evaluated, the budget then spent, and the
// user locked out on both.
func TestDuoActivationPollsSpendNothingReplicas(t *testing.T) {
	emu := startEmulator(t)
	dsn := postgresDSN(t)
	config, _ := postgresConfigAt(t, dsn, "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: "secure"}))
	a, b := startReplica(t, config), startReplica(t, config)
	defer a.stop()
	defer b.stop()
	hosts := []*testHost{a, b}
	begin := func(h *testHost, user string) string {
		r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"})
		d, _ := r.body["display"].(map[string]any)
		if r.status != http.StatusCreated || d["activation_code"] == nil {
			t.Fatalf("begin: %d %v", r.status, r.body)
		}
		return d["activation_code"].(string)
	}
	confirm := func(h *testHost, user string, body map[string]string) response {
		return h.do("POST", "/v1/users/"+user+"/enrollments/duo/confirm", appKey, body)
	}

	activation := begin(a, "carol")
	got := httpBurst(t, hosts, 4*free, func(h *testHost, _ int) response { return confirm(h, "carol", map[string]string{}) })
	if got["/waiting"] == 0 || got["/waiting"]+got["429"] != 4*free {
		t.Fatalf("a burst of %d polls over two replicas: %v; want each waiting or 429", 4*free, got)
	}
	if n := factorFailures(t, dsn, "carol"); n != 0 {
		t.Errorf("the budget after a burst of polls: %d counted, want 0", n)
	}
	for i := range 2 * free {
		if r := confirm(hosts[i%2], "carol", map[string]string{}); r.status != http.StatusAccepted || r.str("reason") != "waiting" {
			t.Fatalf("poll %d after the burst: %d %v; want 202 waiting", i+1, r.status, r.body)
		}
	}
	if n := factorFailures(t, dsn, "carol"); n != 0 {
		t.Errorf("the budget after %d more polls: %d counted, want 0", 2*free, n)
	}
	if err := emu.ActivateEnrollment(activation); err != nil {
		t.Fatal(err)
	}
	if r := confirm(b, "carol", map[string]string{}); r.status != http.StatusOK || r.str("status") != "active" {
		t.Fatalf("confirm after activation: %d %v", r.status, r.body)
	}

	// With a code, each confirmation counts, waiting or not, on either
	// replica: the free attempts are evaluated and not one more.
	begin(b, "dave")
	got = httpBurst(t, hosts, 4*free, func(h *testHost, _ int) response { return confirm(h, "dave", map[string]string{"code": "123456"}) })
	if got["/waiting"] != free || got["429"] != 3*free {
		t.Errorf("a burst of %d confirmations with a code over two replicas: %v; want %d evaluated, %d 429", 4*free, got, free, 3*free)
	}
	if n := factorFailures(t, dsn, "dave"); n != free {
		t.Errorf("the budget after the guesses: %d counted, want %d (each once)", n, free)
	}
	for _, h := range hosts {
		if r := confirm(h, "dave", map[string]string{}); r.status != http.StatusTooManyRequests || r.errCode() != "locked_out" {
			t.Errorf("a poll after %d guesses: %d %v; want 429 locked_out", free, r.status, r.body)
		}
	}
}

// lockWaiters lists the pids of the server processes serving app (the
// application_name of one replica's connections) that wait for a lock.
func lockWaiters(admin *pgx.Conn, app string) ([]int, error) {
	rows, err := admin.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' ORDER BY pid`, app)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// TestReservationBoundReplicas: two replicas on one PostgreSQL whose
// statement_timeout the DSN shortens to 2 s (lock_timeout off). Another
// session holds the row a user's reservations lock, a burst of logins
// with the user's right code is split over both replicas, and once the
// first replica's logins wait for the lock the server processes serving
// them are stopped (SIGSTOP): for that replica the server is hung. Its
// logins answer 503 store_unavailable within the store's bound
// (statement_timeout + 5 s, the server cannot end them), the other
// replica's when the server's statement_timeout ends them, and none is
// let in without a reservation. After SIGCONT, and the lock released,
// the code lets the user in once over both replicas, and every decision
// answered is in the audit.
func TestReservationBoundReplicas(t *testing.T) {
	const (
		statementTimeout = 2 * time.Second
		bound            = statementTimeout + 5*time.Second // the store's answerMargin
		slack            = 1500 * time.Millisecond
		logins           = 8
	)
	schemaDSN := postgresDSN(t)
	name := make([]byte, 6)
	rand.Read(name)
	appA, appB := "tf_bound_a_"+hex.EncodeToString(name), "tf_bound_b_"+hex.EncodeToString(name)
	dsn := schemaDSN + "&statement_timeout=2s&lock_timeout=0"
	config, _ := postgresConfigAt(t, dsn+"&application_name="+appB, totpClients)
	a := startReplicaEnv(t, config, []string{"TWOFACTOR_STORAGE__DSN=" + dsn + "&application_name=" + appA})
	defer a.stop()
	b := startReplica(t, config)
	defer b.stop()
	hosts := []*testHost{a, b}
	secret := enrollTOTPOn(t, b, "ann")
	code := realCode(t, secret, 30*time.Second) // a first use, inside the skew

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, os.Getenv("TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The row every reservation of ann's locks (inserted if not there).
	tx := holdLock(t, schemaDSN, `INSERT INTO attempts (user_id, budget, failures) VALUES ('ann', 'factor', 0)
		ON CONFLICT (user_id, budget) DO UPDATE SET failures = attempts.failures`)

	// Stop A's backends once all of A's logins wait for the lock: well
	// before the server's statement_timeout would end their wait.
	stopped := make(chan []int, 1)
	go func() {
		deadline := time.Now().Add(statementTimeout * 3 / 4)
		var pids []int
		for len(pids) < logins/2 && time.Now().Before(deadline) {
			var err error
			if pids, err = lockWaiters(admin, appA); err != nil {
				t.Error(err)
				break
			}
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Errorf("SIGSTOP %d: %v", pid, err)
			}
		}
		stopped <- pids
	}()
	rs, took := burst.Run2(logins, func(i int) (response, time.Duration) {
		began := time.Now()
		r := hosts[i%2].verify("ann", code)
		return r, time.Since(began)
	})
	pids := <-stopped
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT %d: %v", pid, err)
		}
	}
	if len(pids) != logins/2 {
		t.Fatalf("%d of replica A's %d logins waited for the lock in time to be stopped: the test proves nothing", len(pids), logins/2)
	}
	for i, r := range rs {
		if r.status != http.StatusServiceUnavailable || r.errCode() != "store_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("login %d on replica %c while the lock is held: %d %v; want 503 store_unavailable with Retry-After", i, "AB"[i%2], r.status, r.body)
		}
		lo, hi := statementTimeout, statementTimeout+slack // B: the server's timeout
		if i%2 == 0 {
			lo, hi = bound-slack, bound+slack // A: the server is hung, the store's bound
		}
		if took[i] < lo || took[i] > hi {
			t.Errorf("login %d on replica %c answered after %v, want within [%v, %v]", i, "AB"[i%2], took[i], lo, hi)
		}
	}
	t.Logf("stopped %v; answers after %v (A) and %v (B) at most", pids,
		slices.Max([]time.Duration{took[0], took[2], took[4], took[6]}), slices.Max([]time.Duration{took[1], took[3], took[5], took[7]}))

	// The stopped backends, resumed, find their statements ended; the
	// lock is released only once they have left its queue, so none of
	// them counts an attempt its replica gave up on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		waiting, err := lockWaiters(admin, appA)
		if err != nil {
			t.Fatal(err)
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A's resumed backends %v still wait for the lock after 5 s", waiting)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := factorFailures(t, schemaDSN, "ann"); n != 0 {
		t.Errorf("%d attempts counted for logins that all answered 503", n)
	}

	rs = burst.Run(logins, func(i int) response { return hosts[i%2].verify("ann", code) })
	answered := map[string]int{}
	for i, r := range rs {
		v := verdictOf(r)
		answered[v]++
		if v != "allow/" && v != "deny/replayed" && v != "429" {
			t.Errorf("login %d on replica %c after SIGCONT: %d %v; want allow, replayed or 429", i, "AB"[i%2], r.status, r.body)
		}
	}
	if answered["allow/"] != 1 {
		t.Errorf("the right code %d times over both replicas after SIGCONT: %v; want one allow", logins, answered)
	}
	// Every answer is in the audit, and only those: a 429 as a deny
	// (locked_out), a 503 as an error.
	audited := map[string]int{}
	for _, e := range b.do("GET", "/v1/audit?user=ann&limit=1000", adminKey, nil).body["entries"].([]any) {
		if m := e.(map[string]any); m["event"] == "verify" {
			reason, _ := m["reason"].(string)
			audited[fmt.Sprint(m["outcome"], "/", reason)]++
		}
	}
	want := map[string]int{"allow/": answered["allow/"], "deny/replayed": answered["deny/replayed"], "deny/locked_out": answered["429"], "error/store_unavailable": logins}
	maps.DeleteFunc(want, func(_ string, n int) bool { return n == 0 })
	if fmt.Sprint(audited) != fmt.Sprint(want) {
		t.Errorf("verify decisions in the audit: %v; answered %v", audited, want)
	}
}
