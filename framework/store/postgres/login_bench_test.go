package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// BenchmarkLogin is a first-use login's store work, from many goroutines
// at once as the host's requests are: the reservation with the
// enrollment read, then the decision (new state, the budget's reset, an
// audit entry), each user once. Besides ns/op it reports the CPU the
// server's backends of this store used per login ("pg-µs/op"), read from
// /proc when the server runs on this machine and /proc shows its
// processes (as root); the WAL writer's is left out.
//
//	TEST_POSTGRES_DSN=... go test -run '^$' -bench Login -benchtime 20000x -cpu 32 ./framework/store/postgres/
func BenchmarkLogin(b *testing.B) {
	ctx := context.Background()
	buf := make([]byte, 6)
	rand.Read(buf)
	name := "tf_bench_" + hex.EncodeToString(buf)
	dsn := pgtest.WithParam(b, pgtest.Schema(b), "application_name", name)
	s, err := Create(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	users := b.N + 1
	now := time.Now().UTC().Truncate(time.Microsecond)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		INSERT INTO enrollments (user_id, provider, status, state, version, created_at, updated_at, confirmed_at)
		SELECT 'user' || g, 'totp', 'active', '\x0102030405060708090a0b0c0d0e0f10111213141516171819', 1, $2, $2, $2
		FROM generate_series(0, $1) g`, users, now); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE enrollments`); err != nil {
		b.Fatal(err)
	}
	lockUntil := func(n int) time.Time {
		if n < 5 {
			return time.Time{}
		}
		return now.Add(time.Minute)
	}
	var next atomic.Int64
	cpu0 := backendCPU(b, conn, name)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := "user" + strconv.FormatInt(next.Add(1), 10)
			_, ok, e, err := reserveFor(ctx, s, user, now, lockUntil)
			if err != nil || !ok || e == nil {
				b.Errorf("reserve %s: %v, %v, %v", user, ok, e, err)
				return
			}
			u := *e
			u.State, u.UpdatedAt = append(u.State[:len(u.State):len(u.State)], 1), now
			if err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &u, ResetUser: user,
				Audit: []framework.AuditEntry{{Time: now, Event: framework.EventVerify, UserID: user, Provider: "totp",
					Audience: framework.AudienceClient, Outcome: "allow", ClientIP: "127.0.0.1"}}}); err != nil {
				b.Errorf("commit %s: %v", user, err)
				return
			}
		}
	})
	b.StopTimer()
	if cpu1 := backendCPU(b, conn, name); cpu0 >= 0 && cpu1 >= 0 {
		b.ReportMetric((cpu1-cpu0)/float64(b.N)*1e6, "pg-µs/op")
	}
}

// backendCPU is the CPU seconds the server processes of the sessions
// named name have used, or -1 when /proc does not show them.
func backendCPU(b *testing.B, conn *pgx.Conn, name string) float64 {
	rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, name)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// The fields after the command name, which ends at the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		total += (u + s) / 100 // clock ticks: USER_HZ is 100 on Linux
	}
	return total
}

// reserveFor is what the framework's gate does: ReserveAttemptFor where
// the store has it, else ReserveAttempt and Get (so the benchmark also
// runs on a store without it, to compare).
func reserveFor(ctx context.Context, s framework.Store, user string, now time.Time, lockUntil func(int) time.Time) (framework.Reservation, bool, *framework.Enrollment, error) {
	if er, ok := s.(framework.EnrollmentReserver); ok {
		return er.ReserveAttemptFor(ctx, user, framework.BudgetFactor, "totp", now, lockUntil)
	}
	r, ok, err := s.ReserveAttempt(ctx, user, framework.BudgetFactor, now, lockUntil)
	if err != nil || !ok {
		return r, ok, nil, err
	}
	e, err := s.Get(ctx, user, "totp")
	return r, ok, &e, err
}
