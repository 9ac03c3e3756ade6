package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// openFresh opens a store in a new schema; the caller closes it.
func openFresh(t *testing.T) *Store {
	t.Helper()
	return mustOpen(t, pgtest.Schema(t))
}

func mustOpen(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Create(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func pendingEnrollment(user, provider, state string) framework.Enrollment {
	now := time.Date(2025, time.June, 1, 12, 0, 0, 123456789, time.UTC)
	return framework.Enrollment{UserID: user, Provider: provider, State: []byte(state), CreatedAt: now, UpdatedAt: now}
}

func TestConformance(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) framework.Store {
		return openFresh(t)
	})
}

// TestMigrationsMatchSQLite keeps the two stores' schema versions in step:
// version N must add the same table in both, or a "newer schema" check
// would mean different things in each. It needs no server.
func TestMigrationsMatchSQLite(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, m := range ms {
		ours = append(ours, m.Name)
	}
	paths, err := filepath.Glob(filepath.Join("..", "sqlite", "migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var theirs []string
	for _, p := range paths {
		theirs = append(theirs, filepath.Base(p))
	}
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		t.Errorf("PostgreSQL migrations %q, SQLite migrations %q: they must match one for one", ours, theirs)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dsn := pgtest.Schema(t)
	s := mustOpen(t, dsn)
	p, err := s.PutPending(t.Context(), pendingEnrollment("alice", "totp", "pending"))
	if err != nil {
		t.Fatal(err)
	}
	p.Status = framework.StatusActive
	p.State = []byte("active")
	p.ConfirmedAt = p.UpdatedAt
	want, err := s.Update(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	for i := range 2 { // the second reopen also checks migrations stay idempotent
		s = mustOpen(t, dsn)
		got, err := s.Get(t.Context(), "alice", "totp")
		if err != nil {
			t.Fatalf("reopen %d: Get: %v", i, err)
		}
		if got.Version != want.Version || string(got.State) != "active" || got.Status != framework.StatusActive ||
			!got.ConfirmedAt.Equal(want.ConfirmedAt) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("reopen %d: Get = %+v, want %+v", i, got, want)
		}
		checkMigrationsApplied(t, s)
		closeStore(t, s)
	}
}

// checkMigrationsApplied checks each embedded migration is recorded once.
func checkMigrationsApplied(t *testing.T, s *Store) {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var n, distinct int
	err = s.pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || distinct != len(ms) {
		t.Fatalf("schema_migrations has %d rows (%d versions), want %d", n, distinct, len(ms))
	}
}

// TestConcurrentOpenOfNewSchema is replicas starting together against a
// new database: without the migration lock, several would try to create
// the same tables and all but one fail.
func TestConcurrentOpenOfNewSchema(t *testing.T) {
	const n = 8
	dsn := pgtest.Schema(t)
	stores, errs := burst.Run2(n, func(int) (*Store, error) { return Create(t.Context(), dsn) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	if t.Failed() {
		for _, s := range stores {
			if s != nil {
				s.Close()
			}
		}
		t.FailNow()
	}
	defer func() {
		for _, s := range stores {
			closeStore(t, s)
		}
	}()

	checkMigrationsApplied(t, stores[0])
	// Each sees the others' writes: they really share one schema.
	for i, s := range stores {
		if _, err := s.PutPending(t.Context(), pendingEnrollment("alice", string(rune('a'+i)), "x")); err != nil {
			t.Fatalf("store %d: PutPending: %v", i, err)
		}
	}
	for i, s := range stores {
		list, err := s.List(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n {
			t.Errorf("store %d lists %d enrollments, want %d", i, len(list), n)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.Schema(t)
	s := mustOpen(t, dsn)
	if _, err := s.pool.Exec(t.Context(),
		`INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s, err := Create(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer build succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// TestFailedMigrationChangesNothing: a migration that fails part-way
// leaves no table and no record behind, because all run in one
// transaction.
func TestFailedMigrationChangesNothing(t *testing.T) {
	dsn := pgtest.Schema(t)
	// A table in the way of migration 0003 makes it fail after 0001 and
	// 0002 have run in the same transaction.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE TABLE audit (x int)`); err != nil {
		t.Fatal(err)
	}
	s, err := Create(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with a conflicting table in the schema")
	}
	if !strings.Contains(err.Error(), "0003_audit.sql") {
		t.Errorf("error %q does not name the failed migration", err)
	}
	var tables []string
	rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tables, []string{"audit"}) {
		t.Errorf("tables after failed migration: %q, want only the conflicting one", tables)
	}
}

func TestPing(t *testing.T) {
	s := openFresh(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	closeStore(t, s)
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	base := pgtest.DSN(t)
	const pw = "Sup3rS3cret"
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL; these cases build on one", pgtest.DSNEnv)
	}
	withPassword := func(host string) string {
		v := *u
		v.User = url.UserPassword(v.User.Username(), pw)
		if host != "" {
			v.Host = host
		}
		return v.String()
	}
	missing := "t_missing_" + hex.EncodeToString([]byte(t.Name()))[:8]
	tests := []struct {
		name string
		dsn  string
		want string // the error must contain this
	}{
		{"empty", "", "empty DSN"},
		{"not a port", strings.Replace(withPassword("127.0.0.1:5432"), "5432", "54x2", 1), "parse DSN"},
		{"unknown sslmode", pgtest.WithParam(t, withPassword(""), "sslmode", "sometimes"), "parse DSN"},
		{"keyword/value, bad port", "host=127.0.0.1 port=nope user=postgres password=" + pw + " dbname=test", "parse DSN"},
		{"keyword/value, quoted", "host=127.0.0.1 user=postgres password='" + pw + " x' sslmode=bogus", "parse DSN"},
		{"nothing listening", withPassword("127.0.0.1:1"), "connect"},
		{"password in the query", "postgres://127.0.0.1:1/test?sslmode=disable&password=" + pw, "connect"},
		{"schema does not exist", pgtest.WithParam(t, withPassword(""), "search_path", missing), "migrate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.HasPrefix(msg, "postgres: open: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not start with \"postgres: open: \" and say %q", msg, tc.want)
			}
			if strings.Contains(msg, pw) {
				t.Errorf("error contains the password: %q", msg)
			}
		})
	}
}

func TestDSNSecrets(t *testing.T) {
	tests := []struct {
		dsn  string
		want []string
	}{
		{"postgres://u:p%40ss@h/db", []string{"p%40ss", "p@ss"}},
		{"postgresql://u:pw@h/db?sslpassword=key1&x=y", []string{"key1", "pw"}},
		{"host=h password='a b\\'c' sslmode=x", []string{`'a b\'c'`, `a b\'c`, `a b'c`}},
		{"host=h password=plain", []string{"plain"}},
		{"postgres://u@h/db", nil},
	}
	for _, tc := range tests {
		got := dsnSecrets(tc.dsn)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("dsnSecrets(%q) = %q, missing %q", tc.dsn, got, w)
			}
		}
		if tc.want == nil && len(got) != 0 {
			t.Errorf("dsnSecrets(%q) = %q, want none", tc.dsn, got)
		}
	}
}

func TestBadInputRejectedWithoutLeakingState(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	const secret = "SEALED-STATE-BYTES"
	p, err := s.PutPending(t.Context(), pendingEnrollment("alice", "totp", "x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"PutPending with zero CreatedAt", func() error {
			e := pendingEnrollment("bob", "totp", secret)
			e.CreatedAt = time.Time{}
			_, err := s.PutPending(t.Context(), e)
			return err
		}},
		{"PutPending with a time past 2262", func() error {
			e := pendingEnrollment("bob", "totp", secret)
			e.UpdatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
			_, err := s.PutPending(t.Context(), e)
			return err
		}},
		{"PutPending with a NUL in the user id", func() error {
			_, err := s.PutPending(t.Context(), pendingEnrollment("bob\x00", "totp", secret))
			return err
		}},
		{"Update with an unknown status", func() error {
			e := p
			e.Status = "revoked"
			e.State = []byte(secret)
			_, err := s.Update(t.Context(), e)
			return err
		}},
	}
	for _, tc := range tests {
		err := tc.call()
		if err == nil {
			t.Errorf("%s: succeeded", tc.name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error message contains the state: %q", tc.name, err)
		}
	}
	if _, err := s.Get(t.Context(), "bob", "totp"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("rejected PutPending stored something: %v", err)
	}
	if got, err := s.Get(t.Context(), "alice", "totp"); err != nil || got.Version != p.Version {
		t.Errorf("rejected Update changed the row: %+v, %v", got, err)
	}
}

// TestSentinelsWrapped: the framework branches with errors.Is, and logs the
// message, which must say which store and operation failed.
func TestSentinelsWrapped(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	e := pendingEnrollment("alice", "totp", "x")
	e.Version = 7
	e.Status = framework.StatusActive
	_, err := s.Update(t.Context(), e)
	if !errors.Is(err, framework.ErrConflict) || !strings.HasPrefix(err.Error(), "postgres: update enrollment: ") {
		t.Errorf("Update of missing row: %v", err)
	}
	err = s.Delete(t.Context(), "alice", "totp")
	if !errors.Is(err, framework.ErrNotFound) || !strings.HasPrefix(err.Error(), "postgres: delete enrollment: ") {
		t.Errorf("Delete of missing row: %v", err)
	}
	_, err = s.ReservePush(t.Context(), framework.Transaction{ID: "tx", UserID: "alice", Provider: "duo", CreatedAt: e.CreatedAt, ExpiresAt: e.CreatedAt},
		e.CreatedAt, framework.DefaultPushLimit)
	if !errors.Is(err, framework.ErrNotFound) || !strings.HasPrefix(err.Error(), "postgres: reserve push: ") {
		t.Errorf("ReservePush without enrollment: %v", err)
	}
}

// TestKeyColumnsCollateC: List's byte order, and exact matching of ids,
// must not depend on the locale the database was created with. The suite
// checks the order on this server; this pins where it comes from, so it
// also holds on a server whose default collation happens to differ.
func TestKeyColumnsCollateC(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	var collations []string
	rows, err := s.pool.Query(t.Context(), `
		SELECT table_name || '.' || column_name || '=' || coalesce(collation_name, '')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name IN ('user_id', 'provider')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if collations, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(collations) == 0 {
		t.Fatal("no user_id or provider columns found")
	}
	for _, c := range collations {
		if !strings.HasSuffix(c, "=C") {
			t.Errorf("column %s: want collation C", c)
		}
	}
}

// TestAuditTailMissesNothing is a reader following the log with AfterID
// while replicas append: every entry must reach it. Ids handed out in one
// order and committed in another would make it skip some.
func TestAuditTailMissesNothing(t *testing.T) {
	dsn := pgtest.Schema(t)
	const writers, each = 8, 25
	stores := make([]*Store, writers)
	for i := range stores {
		stores[i] = mustOpen(t, dsn) // separate pools, as separate replicas
		defer closeStore(t, stores[i])
	}
	reader := stores[0]

	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range each {
				e := framework.AuditEntry{Time: time.Now(), Event: framework.EventVerify, UserID: fmt.Sprintf("u%d", i), Reason: fmt.Sprint(j)}
				if err := s.AppendAudit(t.Context(), e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[int64]bool{}
	var cursor int64
	follow := func() {
		page, err := reader.ListAudit(t.Context(), framework.AuditQuery{AfterID: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seen[e.ID] = true
			cursor = e.ID
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	follow() // everything has committed now
	all, err := reader.ListAudit(t.Context(), framework.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("log has %d entries, want %d", len(all), writers*each)
	}
	for _, e := range all {
		if !seen[e.ID] {
			t.Errorf("the tailing reader never saw entry %d", e.ID)
		}
	}
}

// TestConcurrentRecoveryReplace: replacements racing for one user leave
// exactly one of the sets, never a mix.
func TestConcurrentRecoveryReplace(t *testing.T) {
	s := openFresh(t)
	defer closeStore(t, s)
	const n = 10
	sets := make([][][]byte, n)
	for i := range sets {
		for j := range 3 {
			sets[i] = append(sets[i], fmt.Appendf(nil, "set%d-code%d", i, j))
		}
	}
	for _, err := range burst.Run(n, func(i int) error { return s.ReplaceRecoveryCodes(t.Context(), "alice", sets[i], time.Now()) }) {
		if err != nil {
			t.Error(err)
		}
	}
	if got, err := s.CountRecoveryCodes(t.Context(), "alice"); err != nil || got != 3 {
		t.Fatalf("alice has %d codes (%v), want one set of 3", got, err)
	}
	rows, err := s.pool.Query(t.Context(), `SELECT hash FROM recovery_codes WHERE user_id = 'alice' ORDER BY hash`)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b []byte) bool { return string(a) == string(b) }
	if !slices.ContainsFunc(sets, func(set [][]byte) bool { return slices.EqualFunc(hashes, set, same) }) {
		t.Errorf("alice's codes are no single set")
	}
}
