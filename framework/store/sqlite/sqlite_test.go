package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/storetest"
	"github.com/twofactor/twofactor/internal/burst"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) framework.Store {
		return openTemp(t)
	})
}

// openTemp opens a store in a fresh temporary directory; the caller closes it.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Create(t.Context(), filepath.Join(t.TempDir(), "twofactor.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Create(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
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

func TestFilesAreOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	defer closeStore(t, s)
	// A write makes sure the log and shared-memory files exist.
	if _, err := s.PutPending(t.Context(), pendingEnrollment("alice", "totp", "x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(p), got)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
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
		s = mustOpen(t, path)
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
	err = s.r.QueryRowContext(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || distinct != len(ms) {
		t.Fatalf("schema_migrations has %d rows (%d versions), want %d", n, distinct, len(ms))
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	// Separate *sql.DBs share nothing but the file, as two processes would;
	// SQLite's locking between them is the same. More than two makes a lost
	// race likelier to show.
	const n = 8
	path := filepath.Join(t.TempDir(), "twofactor.db")
	stores, errs := burst.Run2(n, func(int) (*Store, error) { return Create(t.Context(), path) })
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
	// Each sees the others' writes: they really share one database.
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

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		is     error // if set, errors.Is must hold
		notNew string
	}{
		{"missing parent", filepath.Join(dir, "missing", "twofactor.db"), fs.ErrNotExist, filepath.Join(dir, "missing")},
		{"missing grandparent", filepath.Join(dir, "a", "b", "twofactor.db"), fs.ErrNotExist, filepath.Join(dir, "a")},
		{"parent is a file", filepath.Join(notDir, "twofactor.db"), nil, ""},
		{"path is a directory", dir, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Create(t.Context(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path %s", err, tc.path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.notNew != "" {
				if _, err := os.Stat(tc.notNew); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Open created %s", tc.notNew)
				}
			}
		})
	}
}

func TestPathNeedsNoEscaping(t *testing.T) {
	// Characters that mean something in a URI or a DSN.
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20&_pragma=query_only(1)")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "two factor?.db")
	s := mustOpen(t, path)
	defer closeStore(t, s)
	if _, err := s.PutPending(t.Context(), pendingEnrollment("alice", "totp", "x")); err != nil {
		t.Fatalf("PutPending: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "two factor?.db") {
			t.Errorf("unexpected file %q in %s", e.Name(), dir)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

func TestConnectionSettings(t *testing.T) {
	s := openTemp(t)
	defer closeStore(t, s)
	tests := []struct {
		pragma         string
		writer, reader string
	}{
		{"journal_mode", "wal", "wal"},
		{"synchronous", "2", "2"}, // FULL
		{"foreign_keys", "1", "1"},
		{"busy_timeout", "5000", "5000"},
		{"query_only", "0", "1"},
	}
	for _, tc := range tests {
		var w, r string
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&w); err != nil {
			t.Fatal(err)
		}
		if err := s.r.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&r); err != nil {
			t.Fatal(err)
		}
		if w != tc.writer || r != tc.reader {
			t.Errorf("PRAGMA %s: writer %s, reader %s; want %s, %s", tc.pragma, w, r, tc.writer, tc.reader)
		}
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	if _, err := s.w.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s, err := Create(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer build succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestBadInputRejectedWithoutLeakingState(t *testing.T) {
	s := openTemp(t)
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

func TestPing(t *testing.T) {
	s := openTemp(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	closeStore(t, s)
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}
