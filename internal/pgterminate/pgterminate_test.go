package pgterminate

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestLoopTerminatesOnlyItsApp: a loop ends the backends of its
// application_name, and only those: a session of another name lives on,
// and with LockWaiters a session of its name that waits for no lock lives
// on too. Stop reports what it terminated and may be called again.
func TestLoopTerminatesOnlyItsApp(t *testing.T) {
	dsn := os.Getenv("TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	connect := func(app string) *pgx.Conn {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", app)
		u.RawQuery = q.Encode()
		c, err := pgx.Connect(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	alive := func(c *pgx.Conn) bool { return c.Ping(context.Background()) == nil }
	for _, tc := range []struct {
		name        string
		lockWaiters bool
		wantEnded   bool
	}{
		{"every backend", false, true},
		{"lock waiters only", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := AppName("tf_pgterm")
			if !strings.HasPrefix(app, "tf_pgterm_") || app == AppName("tf_pgterm") {
				t.Fatalf("AppName = %q: want the prefix and a random suffix", app)
			}
			target, bystander := connect(app), connect(app+"_other")
			l := Start(t, dsn, Options{App: app, LockWaiters: tc.lockWaiters, Every: time.Millisecond})
			// The target's end is the event to wait for; when it must
			// live, a few hundred rounds that left it alone will do.
			deadline := time.Now().Add(10 * time.Second)
			if !tc.wantEnded {
				deadline = time.Now().Add(300 * time.Millisecond)
			}
			for alive(target) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			n := l.Stop()
			if ended := !alive(target); ended != tc.wantEnded {
				t.Errorf("target ended = %v, want %v (%d terminated)", ended, tc.wantEnded, n)
			}
			if tc.wantEnded && n < 1 {
				t.Errorf("Stop = %d, want at least the target counted", n)
			}
			if !alive(bystander) {
				t.Error("a session of another application_name was terminated")
			}
			if again := l.Stop(); again != n {
				t.Errorf("second Stop = %d, want %d", again, n)
			}
		})
	}
	if (*Loop)(nil).Stop() != 0 {
		t.Error("Stop on a nil Loop: want 0")
	}
}
