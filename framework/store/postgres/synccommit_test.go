package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// tempRole creates a login role with the given ALTER ROLE ... SET
// setting, dropped (what it owns handed to the test's own role first)
// when the test ends, and returns dsn logging in as it.
func tempRole(t *testing.T, dsn, setting string) string {
	t.Helper()
	ctx := t.Context()
	b := make([]byte, 6)
	rand.Read(b)
	role := "t_role_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var self string
	if err := admin.QueryRow(ctx, `SELECT current_user`).Scan(&self); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN SUPERUSER`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		for _, q := range []string{`REASSIGN OWNED BY ` + role + ` TO ` + self, `DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := c.Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
				return
			}
		}
	})
	if _, err := admin.Exec(ctx, `ALTER ROLE `+role+` SET `+setting); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

// TestDecisionCommitDurable: the store's sessions, where decisions
// commit, run with synchronous_commit on whatever the role, the database
// or the DSN ask (off, local, remote_write would have the server answer a
// commit before its WAL is flushed: a crash right after takes back an
// allow, and the code it spent passes again), except remote_apply from
// the DSN, which waits for more. A reservation's own asynchronous commit
// stays its transaction's.
func TestDecisionCommitDurable(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T, dsn string) string
		want string
	}{
		{"no setting", func(_ *testing.T, dsn string) string { return dsn }, "on"},
		{"ALTER ROLE SET synchronous_commit = off", func(t *testing.T, dsn string) string {
			return tempRole(t, dsn, "synchronous_commit = off")
		}, "on"},
		{"ALTER ROLE SET synchronous_commit = local", func(t *testing.T, dsn string) string {
			return tempRole(t, dsn, "synchronous_commit = local")
		}, "on"},
		{"DSN synchronous_commit=off", func(t *testing.T, dsn string) string {
			return pgtest.WithParam(t, dsn, "synchronous_commit", "off")
		}, "on"},
		{"DSN options=-c synchronous_commit=off", func(t *testing.T, dsn string) string {
			return pgtest.WithParam(t, dsn, "options", "-c synchronous_commit=off")
		}, "on"},
		{"DSN synchronous_commit=remote_apply", func(t *testing.T, dsn string) string {
			return pgtest.WithParam(t, dsn, "synchronous_commit", "remote_apply")
		}, "remote_apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One connection: the setting read is the decision's session's.
			s := mustOpen(t, tc.dsn(t, pgtest.WithParam(t, pgtest.Schema(t), "pool_max_conns", "1")))
			defer closeStore(t, s)
			ctx := t.Context()
			setting := func(when string) {
				t.Helper()
				var got string
				if err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("synchronous_commit of the store's session %s: %q, want %q", when, got, tc.want)
				}
			}
			e, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed"))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", reserveNow, lockAt(3)); err != nil {
				t.Fatal(err)
			}
			setting("after a reservation")
			e.State = []byte("code used")
			if err := s.CommitDecision(ctx, framework.DecisionWrite{Update: &e, ResetUser: "alice",
				Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: "alice", Provider: "totp", Outcome: "allow"}}}); err != nil {
				t.Fatal(err)
			}
			setting("after a decision")
		})
	}
}
