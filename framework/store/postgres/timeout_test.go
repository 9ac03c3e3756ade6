package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twofactor/twofactor/internal/pgtest"
)

// throwawayRole creates a login role that may use the schema dsn names
// (its search_path), runs setup as the test database's superuser (ALTER
// ROLE $role [IN DATABASE $db] SET ...), and returns dsn logging in as
// the role. The role and
// what it owns are dropped when the test ends, after the stores it opened
// are closed (cleanups run last registered first).
func throwawayRole(t *testing.T, dsn string, setup ...string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL; the role cases build on one", pgtest.DSNEnv)
	}
	b := make([]byte, 6)
	rand.Read(b)
	role := "tf_role_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(t.Context(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	schema := u.Query().Get("search_path")
	stmts := append([]string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT ALL ON SCHEMA ` + schema + ` TO ` + role}, setup...)
	for _, stmt := range stmts {
		stmt = strings.NewReplacer("$role", role, "$db", strings.TrimPrefix(u.Path, "/")).Replace(stmt)
		if _, err := admin.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgtest.DSN(t))
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP OWNED BY `+role+`; DROP ROLE `+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	u.User = url.User(role)
	return u.String()
}

// applied is the statement_timeout, in milliseconds, of a connection of
// s's pool that is new (the pool reset first), as its server applies it.
func applied(t *testing.T, s *Store) int64 {
	t.Helper()
	s.pool.Reset()
	var ms int64
	if err := s.pool.QueryRow(t.Context(), `SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'`).Scan(&ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestStatementTimeoutFromServer: the store's bound on its wait for the
// server (serverWait) is the statement_timeout the server applies to the
// store's sessions, wherever it was set — the DSN, its options, ALTER
// ROLE — plus answerMargin; the store's own where nothing set one or the
// server's side set none or a longer one; none (and the default's bound),
// or a longer one, only when the DSN asks. Every connection keeps the value read at open, also
// one made after the role's setting changed.
func TestStatementTimeoutFromServer(t *testing.T) {
	own := statementTimeout.Milliseconds()
	for _, tc := range []struct {
		name  string
		param [2]string // a DSN parameter, if any
		role  []string  // ALTER ROLE statements for a throwaway role, if any
		want  int64     // the sessions' statement_timeout, ms
		bound time.Duration
	}{
		{"nothing set", [2]string{}, nil, own, statementTimeout + answerMargin},
		{"DSN", [2]string{"statement_timeout", "1.5s"}, nil, 1500, 1500*time.Millisecond + answerMargin},
		{"DSN options", [2]string{"options", "-c statement_timeout=1500ms"}, nil, 1500, 1500*time.Millisecond + answerMargin},
		{"DSN asks for none", [2]string{"statement_timeout", "0"}, nil, 0, statementTimeout + answerMargin},
		{"ALTER ROLE", [2]string{}, []string{`ALTER ROLE $role SET statement_timeout = '2500ms'`}, 2500, 2500*time.Millisecond + answerMargin},
		{"ALTER ROLE IN DATABASE", [2]string{}, []string{`ALTER ROLE $role IN DATABASE $db SET statement_timeout = '3s'`}, 3000, 3*time.Second + answerMargin},
		{"ALTER ROLE sets none", [2]string{}, []string{`ALTER ROLE $role SET statement_timeout = 0`}, own, statementTimeout + answerMargin},
		{"ALTER ROLE longer than the store's", [2]string{}, []string{`ALTER ROLE $role SET statement_timeout = '1h'`}, own, statementTimeout + answerMargin},
		{"DSN longer than the store's", [2]string{"statement_timeout", "60s"}, nil, 60000, time.Minute + answerMargin},
		{"DSN over ALTER ROLE", [2]string{"options", "-c statement_timeout=1200"}, []string{`ALTER ROLE $role SET statement_timeout = '2500ms'`}, 1200, 1200*time.Millisecond + answerMargin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Schema(t)
			if tc.role != nil {
				dsn = throwawayRole(t, dsn, tc.role...)
			}
			if tc.param[0] != "" {
				dsn = pgtest.WithParam(t, dsn, tc.param[0], tc.param[1])
			}
			s := mustOpen(t, dsn)
			defer closeStore(t, s)
			if s.serverWait != tc.bound {
				t.Errorf("bound %v, want %v", s.serverWait, tc.bound)
			}
			if got := applied(t, s); got != tc.want {
				t.Errorf("the server applies %d ms, want %d", got, tc.want)
			}
			if tc.role == nil {
				return
			}
			// A change on the server after the open reaches no connection
			// of the store: the bound stays the connections' own.
			if _, err := s.pool.Exec(t.Context(), `SELECT 1`); err != nil {
				t.Fatal(err)
			}
			admin, err := pgx.Connect(t.Context(), pgtest.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(context.Background())
			role := strings.SplitN(strings.TrimPrefix(dsn, "postgres://"), "@", 2)[0]
			if _, err := admin.Exec(t.Context(), `ALTER ROLE `+role+` SET statement_timeout = '7s'`); err != nil {
				t.Fatal(err)
			}
			if got := applied(t, s); got != tc.want {
				t.Errorf("after ALTER ROLE, a new connection applies %d ms, want the open's %d", got, tc.want)
			}
		})
	}
}

// TestStatementTimeoutUnreadFailsOpen: when the server's statement_timeout
// cannot be read (here the session that would read it is terminated by
// the server between its connect and its query), the store does not
// open, and says why.
func TestStatementTimeoutUnreadFailsOpen(t *testing.T) {
	dsn := pgtest.Schema(t)
	admin, err := pgx.Connect(t.Context(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	s, err := open(t.Context(), dsn, true, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
			// Waits (up to 5 s) until the backend is gone.
			_, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1, 5000)`, pc.PID())
			return err
		}
	})
	if err == nil {
		s.Close()
		t.Fatal("the store opened without knowing the server's statement_timeout")
	}
	if !errors.Is(err, errTimeoutUnread) || !strings.HasPrefix(err.Error(), "postgres: open: statement_timeout: ") {
		t.Fatalf("error %q: want the open's statement_timeout step, errTimeoutUnread", err)
	}
	t.Logf("error: %v", err)
}
