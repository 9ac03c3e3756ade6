// Package pgterminate terminates PostgreSQL backends in a loop, for tests
// that check how a store or a host lives through a server that drops its
// connections (a failover, a PgBouncer restart, an admin's
// pg_terminate_backend). The faults are real: the server ends the
// backends, the code under test sees its connections die.
package pgterminate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AppName returns prefix followed by a random suffix: an application_name
// for the connections under test, so that a loop terminates theirs and no
// other test's sharing the server.
func AppName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Options says which backends a Loop terminates, and how often.
type Options struct {
	// App is the application_name of the backends to terminate.
	App string
	// LockWaiters limits each round to the backends waiting for a lock,
	// to end a statement while it waits rather than between statements.
	LockWaiters bool
	// Every is the pause before each round; zero runs the rounds back to
	// back, so that a wait is ended as soon as it begins.
	Every time.Duration
}

// Loop is a running termination loop; Stop ends it.
type Loop struct {
	t          testing.TB
	admin      *pgx.Conn
	stop       chan struct{}
	stopOnce   sync.Once
	done       sync.WaitGroup
	terminated atomic.Int64
}

// Start connects to adminDSN (a session allowed to terminate the
// backends: the test server's superuser) and runs rounds of
// pg_terminate_backend until Stop, or the test's end. A failed round is
// reported with t.Error and ends the loop. Call it from the test's
// goroutine: a failed connection is fatal.
func Start(t testing.TB, adminDSN string, o Options) *Loop {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), adminDSN)
	if err != nil {
		t.Fatalf("pgterminate: connecting as admin: %v", err)
	}
	query := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`
	if o.LockWaiters {
		query += ` AND wait_event_type = 'Lock'`
	}
	l := &Loop{t: t, admin: admin, stop: make(chan struct{})}
	var tick <-chan time.Time
	if o.Every > 0 {
		ticker := time.NewTicker(o.Every)
		tick = ticker.C
		t.Cleanup(ticker.Stop)
	}
	l.done.Go(func() {
		for {
			if tick != nil {
				select {
				case <-l.stop:
					return
				case <-tick:
				}
			} else {
				select {
				case <-l.stop:
					return
				default:
				}
			}
			var n int64
			if err := admin.QueryRow(context.Background(), query, o.App).Scan(&n); err != nil {
				t.Errorf("pgterminate: terminating the backends of %s: %v", o.App, err)
				return
			}
			l.terminated.Add(n)
		}
	})
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the loop, waits for its round in flight, closes its
// connection and returns how many backends it terminated. It may be
// called more than once, and on a nil Loop (a test case that terminates
// nothing), which returns 0.
func (l *Loop) Stop() int64 {
	if l == nil {
		return 0
	}
	l.stopOnce.Do(func() {
		close(l.stop)
		l.done.Wait()
		l.admin.Close(context.Background())
	})
	return l.terminated.Load()
}
