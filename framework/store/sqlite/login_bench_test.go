package sqlite

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// BenchmarkFirstUseLogins is the store's share of a first-use login, as
// the framework makes it: the gate's read (ReserveAttemptFor, with the
// enrollment) and the decision's group commit (the new state, the audit
// entry, the reset of the user's runs, the settled reservation), from 32
// goroutines over 150,000 users, none of them twice in flight. It reports
// the process's CPU per login (cpu-µs/op) beside the wall time, the figure
// to compare on a shared machine.
func BenchmarkFirstUseLogins(b *testing.B) {
	const users = 150000
	s, now := benchStore(b, users)
	lockUntil := func(int) time.Time { return time.Time{} }
	// 32 goroutines on the bench machine's 2 cores, as the login bench's
	// c=32; users in a random order, as its generator sends them.
	b.SetParallelism(16)
	workers := 16 * runtime.GOMAXPROCS(0)
	perm := mrand.Perm(users)
	var worker atomic.Int64
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	ioBefore := procIO()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1) - 1)
		for n := 0; pb.Next(); n++ {
			// Each goroutine its own users: never two logins of one user
			// in flight.
			u := fmt.Sprintf("user%07d", perm[(n*workers+w)%users])
			r, ok, e, err := s.ReserveAttemptFor(b.Context(), u, framework.BudgetFactor, "totp", now, lockUntil)
			if err != nil || !ok || e == nil {
				b.Fatalf("reserve %s: %v %v %v", u, ok, e, err)
			}
			e.State = append(e.State[:0:0], e.State...)
			e.State[0]++
			e.UpdatedAt = time.Now().UTC()
			d := framework.DecisionWrite{
				Update: e,
				Audit: []framework.AuditEntry{{Time: e.UpdatedAt, Event: framework.EventVerify, Actor: "app", UserID: u, Provider: "totp",
					Audience: framework.AudienceClient, Outcome: "allow", ClientIP: "127.0.0.1", Details: map[string]string{"step": "59000000"}}},
				ResetUser: u,
				Settled:   &framework.Refund{UserID: u, Budget: framework.BudgetFactor, Reservation: r},
			}
			if err := s.CommitDecision(b.Context(), d); err != nil {
				b.Fatalf("commit %s: %v", u, err)
			}
		}
	})
	b.StopTimer()
	ioAfter := procIO()
	// The store's I/O per login, which the machine's load does not change
	// (a batch's size does): write and read calls, and bytes written.
	if ioBefore != nil && ioAfter != nil {
		for _, m := range []struct{ field, unit string }{{"syscw", "writes/op"}, {"syscr", "reads/op"}, {"wchar", "B-written/op"}} {
			b.ReportMetric(float64(ioAfter[m.field]-ioBefore[m.field])/float64(b.N), m.unit)
		}
	}
	b.ReportMetric(float64(cpuSince(before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkDecisionBatch is the decision writer alone (writeDecisions)
// on batches of 16 first-use decisions of distinct users, from one
// goroutine: the batch size is fixed, where BenchmarkFirstUseLogins's
// depends on the machine's load, so its CPU per decision compares
// better between two runs on a busy machine.
func BenchmarkDecisionBatch(b *testing.B) {
	const users, size = 150000, 16
	s, now := benchStore(b, users)
	version := make([]int64, users)
	perm := mrand.Perm(users)
	state := make([]byte, 120)
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	ioBefore := procIO()
	b.ResetTimer()
	n := 0
	for n < b.N {
		batch := make([]decisionArgs, 0, size)
		for range size {
			k := perm[n%users]
			n++
			u := fmt.Sprintf("user%07d", k)
			version[k]++
			e := &framework.Enrollment{UserID: u, Provider: "totp", Status: framework.StatusActive, State: state,
				Version: version[k], CreatedAt: now, UpdatedAt: time.Now().UTC(), ConfirmedAt: now}
			a, err := decisionToArgs(framework.DecisionWrite{Update: e, ResetUser: u,
				Audit: []framework.AuditEntry{{Time: e.UpdatedAt, Event: framework.EventVerify, Actor: "app", UserID: u, Provider: "totp",
					Audience: framework.AudienceClient, Outcome: "allow", ClientIP: "127.0.0.1", Details: map[string]string{"step": "59000000"}}}})
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, a)
		}
		errs, err := s.writeDecisions(batch)
		if err = errors.Join(append(errs, err)...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if ioAfter := procIO(); ioBefore != nil && ioAfter != nil {
		for _, m := range []struct{ field, unit string }{{"syscw", "writes/decision"}, {"syscr", "reads/decision"}} {
			b.ReportMetric(float64(ioAfter[m.field]-ioBefore[m.field])/float64(n), m.unit)
		}
	}
	b.ReportMetric(float64(cpuSince(before).Nanoseconds())/1e3/float64(n), "cpu-µs/decision")
}

// BenchmarkGateRead is the gate's read alone (attemptsAndEnrollment),
// from one goroutine over 150,000 users in a random order, with nothing
// written meanwhile: the pages stay cached, so what it measures is the
// read's cost outside SQLite's page reads (the statement, the arguments,
// the row), which is what the way the read is made changes.
func BenchmarkGateRead(b *testing.B) {
	const users = 150000
	s, _ := benchStore(b, users)
	perm := mrand.Perm(users)
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%07d", perm[i])
	}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, e, err := s.attemptsAndEnrollment(b.Context(), ids[i%users], framework.BudgetFactor, "totp")
		if err != nil || e == nil {
			b.Fatalf("read %s: %v %v", ids[i%users], e, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuSince(before).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// benchStore is a new store with users active TOTP enrollments
// (user0000000...), each at version 1, and the time they were written.
func benchStore(b *testing.B, users int) (*Store, time.Time) {
	s, err := Create(b.Context(), b.TempDir()+"/twofactor.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Now().UTC()
	state := make([]byte, 120) // a sealed TOTP state's size
	rand.Read(state)
	batch := make([]framework.Enrollment, 0, 5000)
	for i := range users {
		batch = append(batch, framework.Enrollment{UserID: fmt.Sprintf("user%07d", i), Provider: "totp", Status: framework.StatusActive,
			State: state, Version: 1, CreatedAt: now, UpdatedAt: now, ConfirmedAt: now})
		if len(batch) == cap(batch) || i == users-1 {
			if err := s.InsertEnrollments(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s, now
}

// cpuSince is the process's CPU time (user and system) since before.
func cpuSince(before syscall.Rusage) time.Duration {
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	return time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
		syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
}

// procIO reads /proc/self/io, or nil where there is none.
func procIO() map[string]int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil {
			out[k] = n
		}
	}
	return out
}
