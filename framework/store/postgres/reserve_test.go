package postgres

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
)

var reserveNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// lockAt: free attempts below n, then an hour's backoff.
func lockAt(n int) func(int) time.Time {
	return func(f int) time.Time {
		if f < n {
			return time.Time{}
		}
		return reserveNow.Add(time.Hour)
	}
}

// TestReserveAttemptFor: the reservation with the enrollment read in the
// same round trip: the enrollment as Get returns it (nil when there is
// none), counted like ReserveAttempt, and nothing while locked.
func TestReserveAttemptFor(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	ctx := t.Context()
	reserveFor := func(provider string) (framework.Reservation, bool, *framework.Enrollment) {
		t.Helper()
		r, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, provider, reserveNow, lockAt(3))
		if err != nil {
			t.Fatal(err)
		}
		return r, ok, e
	}
	if r, ok, e := reserveFor("totp"); !ok || e != nil || r.Failures != 1 || !r.LockedUntil.IsZero() {
		t.Fatalf("no enrollment: %+v, %v, %+v", r, ok, e)
	}
	if _, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed")); err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(ctx, "alice", "totp")
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, e := reserveFor("totp"); !ok || e == nil || !reflect.DeepEqual(*e, want) || r.Failures != 2 {
		t.Fatalf("with an enrollment: %+v, %v, %+v; want %+v", r, ok, e, want)
	}
	r, ok, e := reserveFor("duo")
	if !ok || e != nil || r.Failures != 3 || !r.LockedUntil.Equal(reserveNow.Add(time.Hour)) || !r.PrevLockedUntil.IsZero() {
		t.Fatalf("another provider, the attempt that starts the backoff: %+v, %v, %+v", r, ok, e)
	}
	if r, ok, e := reserveFor("totp"); ok || e != nil || r.Failures != 3 || !r.LockedUntil.Equal(reserveNow.Add(time.Hour)) {
		t.Fatalf("while locked: %+v, %v, %+v", r, ok, e)
	}
	if a, err := s.Attempts(ctx, "alice", framework.BudgetFactor); err != nil || a.Failures != 3 {
		t.Fatalf("a refused reservation counted: %+v, %v", a, err)
	}
}

// TestReserveLongRun: a run past the counts the one-trip reservation is
// sent (fastCounts) is counted by the two-trip one, from the stored
// count, with lockUntil of the new count.
func TestReserveLongRun(t *testing.T) {
	dsn := pgtest.Schema(t)
	s := mustOpen(t, dsn)
	defer closeStore(t, s)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	past := reserveNow.Add(-time.Minute)
	if _, err := conn.Exec(ctx, `INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES ('alice', 'factor', $1, $2)`, fastCounts+2, past); err != nil {
		t.Fatal(err)
	}
	var asked []int
	r, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", reserveNow, func(n int) time.Time {
		asked = append(asked, n)
		return reserveNow.Add(time.Duration(n) * time.Minute)
	})
	if err != nil || !ok || e != nil || r.Failures != fastCounts+3 || !r.LockedUntil.Equal(reserveNow.Add((fastCounts+3)*time.Minute)) || !r.PrevLockedUntil.Equal(past) {
		t.Fatalf("past fastCounts: %+v, %v, %+v, %v (lockUntil asked for %v)", r, ok, e, err, asked)
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); a.Failures != fastCounts+3 {
		t.Fatalf("stored after the long run's reservation: %+v", a)
	}
}

// TestReserveBurstCountsEach: concurrent reservations of one budget, on
// two stores as two replicas, each count once: the row lock serialises
// them, none is lost, and exactly as many as the budget leaves free get
// through.
func TestReserveBurstCountsEach(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	defer closeStore(t, a)
	defer closeStore(t, b)
	const n, free = 40, 25
	// The count each reservation that got through was given; 0 for none.
	counts := burst.Count(n, func(i int) int {
		s := a
		if i%2 == 1 {
			s = b
		}
		r, ok, _, err := s.ReserveAttemptFor(t.Context(), "alice", framework.BudgetFactor, "totp", reserveNow, lockAt(free))
		if err != nil {
			t.Error(err)
		}
		if err != nil || !ok {
			return 0
		}
		return r.Failures
	})
	delete(counts, 0)
	if len(counts) != free {
		t.Errorf("%d reservations got through, want %d: %v", len(counts), free, counts)
	}
	for f, c := range counts {
		if c != 1 || f < 1 || f > free {
			t.Errorf("count %d handed out %d times", f, c)
		}
	}
}

// TestReserveCommitStaysDurable: the reservation's asynchronous commit is
// its transaction's alone. If it leaked into the session, the next
// decision on that connection would be answered before its commit is
// durable.
func TestReserveCommitStaysDurable(t *testing.T) {
	s := mustOpen(t, pgtest.WithParam(t, pgtest.Schema(t), "pool_max_conns", "1"))
	defer closeStore(t, s)
	ctx := t.Context()
	var inside, after string
	b := &pgx.Batch{}
	b.Queue(asyncCommitSQL)
	b.Queue(`SELECT current_setting('synchronous_commit')`).QueryRow(func(row pgx.Row) error { return row.Scan(&inside) })
	if err := s.pool.Pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if inside != "off" {
		t.Errorf("synchronous_commit inside the reservation's transaction: %q, want off", inside)
	}
	if _, _, _, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", reserveNow, lockAt(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != "on" {
		t.Errorf("synchronous_commit on the connection after a reservation: %q, want on", after)
	}
}

// TestPipelinedConflict: a batch whose compare-and-swap loses is written
// again item by item: the loser gets ErrConflict and writes nothing (no
// state, no audit entry, no reset), the others are written. The loser
// sorts last, so the winner's statements ran before the failing one: had
// the pipeline not been rolled back whole, the winner would then find its
// own write and lose too.
func TestPipelinedConflict(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	ctx := t.Context()
	put := func(user string) framework.Enrollment {
		e, err := s.PutPending(ctx, pendingEnrollment(user, "totp", "seed"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	alice, bob := put("alice"), put("bob")
	for _, u := range []string{"alice", "bob"} {
		if _, _, err := s.ReserveAttempt(ctx, u, framework.BudgetFactor, reserveNow, lockAt(5)); err != nil {
			t.Fatal(err)
		}
	}
	stale := bob
	stale.Version--
	decision := func(e framework.Enrollment) decisionArgs {
		e.State = []byte("new " + e.UserID)
		a, err := decisionToArgs(framework.DecisionWrite{Update: &e, ResetUser: e.UserID,
			Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: e.UserID, Outcome: "allow"}}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	errs, err := s.writeDecisions([]decisionArgs{decision(stale), decision(alice)})
	if err != nil || len(errs) != 2 || !errors.Is(errs[0], framework.ErrConflict) || errs[1] != nil {
		t.Fatalf("writeDecisions: %v, %v; want a conflict for bob alone", errs, err)
	}
	if got, _ := s.Get(ctx, "bob", "totp"); string(got.State) != "seed" {
		t.Errorf("the loser's state was written: %q", got.State)
	}
	if got, _ := s.Get(ctx, "alice", "totp"); string(got.State) != "new alice" || got.Version != alice.Version+1 {
		t.Errorf("the winner's state: %q v%d, want written once over v%d", got.State, got.Version, alice.Version)
	}
	if a, _ := s.Attempts(ctx, "bob", framework.BudgetFactor); a.Failures != 1 {
		t.Errorf("the loser's budget was reset: %+v", a)
	}
	if a, _ := s.Attempts(ctx, "alice", framework.BudgetFactor); a.Failures != 0 {
		t.Errorf("the winner's budget was not reset: %+v", a)
	}
	list, err := s.ListAudit(ctx, framework.AuditQuery{})
	if err != nil || len(list) != 1 || list[0].UserID != "alice" {
		t.Errorf("audit after the batch: %+v, %v; want alice's entry alone", list, err)
	}
}

// TestDataErrorFailsItsDecisionAlone: a decision the server refuses for
// its data (here audit text with a NUL, SQLSTATE 22021, which
// decisionToArgs now refuses before it joins a batch; put in the batch
// here as if something got past it) fails alone, with the server's
// refusal, not as the store being unavailable: the batch is written
// again one decision at a time, and the others, pipelined or careful
// (a recovery code's use, a conflict), are written once.
func TestDataErrorFailsItsDecisionAlone(t *testing.T) {
	ctx := t.Context()
	var s *Store
	put := func(user string) framework.Enrollment {
		e, err := s.PutPending(ctx, pendingEnrollment(user, "totp", "seed"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ReserveAttempt(ctx, user, framework.BudgetFactor, reserveNow, lockAt(5)); err != nil {
			t.Fatal(err)
		}
		return e
	}
	decision := func(e framework.Enrollment, ip string) decisionArgs {
		e.State = []byte("new " + e.UserID)
		a, err := decisionToArgs(framework.DecisionWrite{Update: &e, ResetUser: e.UserID,
			Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: e.UserID, Outcome: "allow"}}})
		if err != nil {
			t.Fatal(err)
		}
		a.audits[0].text[7] = ip // client_ip, past decisionToArgs's check
		return a
	}
	for _, tc := range []struct {
		name  string
		extra func(users []framework.Enrollment) []decisionArgs
	}{
		{"pipelined", func([]framework.Enrollment) []decisionArgs { return nil }},
		{"with a conflict", func(u []framework.Enrollment) []decisionArgs {
			stale := u[0]
			stale.Version--
			return []decisionArgs{decision(stale, "192.0.2.9")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s = openFresh(t)
			defer closeStore(t, s)
			alice, mallory, bob := put("alice"), put("mallory"), put("bob")
			batch := append([]decisionArgs{decision(alice, "192.0.2.1"), decision(mallory, "198.51.100.7\x00"), decision(bob, "192.0.2.2")},
				tc.extra([]framework.Enrollment{alice})...)
			errs, err := s.writeDecisions(batch)
			if err != nil || len(errs) != len(batch) {
				t.Fatalf("writeDecisions: %v, %v; want an answer per decision", errs, err)
			}
			if pe, ok := errors.AsType[*pgconn.PgError](errs[1]); !ok || pe.Code != "22021" || errors.Is(errs[1], framework.ErrStoreUnavailable) {
				t.Errorf("mallory's decision: %v, want the server's 22021 alone", errs[1])
			}
			for i, e := range []framework.Enrollment{alice, bob} {
				if i := []int{0, 2}[i]; errs[i] != nil {
					t.Errorf("%s's decision in mallory's batch: %v, want written", e.UserID, errs[i])
				}
				if got, _ := s.Get(ctx, e.UserID, "totp"); string(got.State) != "new "+e.UserID || got.Version != e.Version+1 {
					t.Errorf("%s's state: %q v%d, want written once over v%d", e.UserID, got.State, got.Version, e.Version)
				}
				if a, _ := s.Attempts(ctx, e.UserID, framework.BudgetFactor); a.Failures != 0 {
					t.Errorf("%s's budget was not reset: %+v", e.UserID, a)
				}
			}
			for _, extra := range errs[3:] {
				if !errors.Is(extra, framework.ErrConflict) {
					t.Errorf("the stale decision: %v, want ErrConflict", extra)
				}
			}
			if got, _ := s.Get(ctx, "mallory", "totp"); string(got.State) != "seed" {
				t.Errorf("mallory's state was written: %q", got.State)
			}
			if a, _ := s.Attempts(ctx, "mallory", framework.BudgetFactor); a.Failures != 1 {
				t.Errorf("mallory's budget was reset: %+v", a)
			}
			list, err := s.ListAudit(ctx, framework.AuditQuery{})
			if err != nil || len(list) != 2 || list[0].UserID != "alice" || list[1].UserID != "bob" {
				t.Errorf("audit after the batch: %+v, %v; want alice's and bob's entries, once each", list, err)
			}
		})
	}
}

// roundTrips counts the trips to the server: a statement sent alone, or
// a batch (its statements go as one pipeline). A batch that has to
// prepare statements first takes one more; those happen once per
// connection and are not counted here once warm.
type roundTrips struct {
	mu sync.Mutex
	n  int
}

func (r *roundTrips) add() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

func (r *roundTrips) get() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.add()
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.add()
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestLoginRoundTrips: a login's store work, one at a time (so each
// decision commits alone; concurrent ones share a commit), is two round
// trips: the reservation with the enrollment read, and the decision (its
// state, the budget's reset and its audit entry).
func TestLoginRoundTrips(t *testing.T) {
	trips := &roundTrips{}
	s, err := open(t.Context(), pgtest.Schema(t), true, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = trips })
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	ctx := t.Context()
	if _, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed")); err != nil {
		t.Fatal(err)
	}
	login := func(i int) {
		t.Helper()
		_, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", reserveNow, lockAt(5))
		if err != nil || !ok || e == nil {
			t.Fatalf("reserve: %v, %v, %v", ok, e, err)
		}
		e.State = []byte{byte(i)}
		if err := s.CommitDecision(ctx, framework.DecisionWrite{Update: e, ResetUser: "alice",
			Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: "alice", Provider: "totp", Outcome: "allow"}}}); err != nil {
			t.Fatal(err)
		}
	}
	login(0) // prepares the statements
	before := trips.get()
	const n = 10
	for i := range n {
		login(i + 1)
	}
	if got := trips.get() - before; got != 2*n {
		t.Errorf("%d round trips for %d logins, want %d", got, n, 2*n)
	}
}

// TestPoolSize: 16 connections unless the DSN says otherwise.
func TestPoolSize(t *testing.T) {
	dsn := pgtest.Schema(t)
	s := mustOpen(t, dsn)
	defer closeStore(t, s)
	if got := s.pool.Config().MaxConns; got < defaultMaxConns {
		t.Errorf("default pool size %d, want at least %d", got, defaultMaxConns)
	}
	small := mustOpen(t, pgtest.WithParam(t, dsn, "pool_max_conns", "3"))
	defer closeStore(t, small)
	if got := small.pool.Config().MaxConns; got != 3 {
		t.Errorf("pool_max_conns=3 gave a pool of %d", got)
	}
}
