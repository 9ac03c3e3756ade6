package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// TestInstallMark: Open refuses a missing file (creating nothing) and an
// empty store nobody initialized; Create marks a store once; a store of
// the previous schema that holds data is marked by its upgrade, and one
// that holds nothing stays refused.
func TestInstallMark(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := Open(t.Context(), missing); !errors.Is(err, framework.ErrStoreNotInitialized) {
		t.Fatalf("Open of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open created %s", missing)
	}

	path := filepath.Join(dir, "twofactor.db")
	s := mustOpen(t, path)
	id, err := s.InstallID(t.Context())
	if err != nil || len(id) != 32 {
		t.Fatalf("InstallID = %q, %v", id, err)
	}
	closeStore(t, s)
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.InstallID(t.Context()); again != id {
		t.Fatalf("InstallID changed on reopen: %q, was %q", again, id)
	}

	for _, tc := range []struct {
		name     string
		data     string // a statement that leaves data from an earlier release, or ""
		wantOpen bool
	}{
		{"previous release, with an enrollment", `INSERT INTO enrollments (user_id, provider, status, state, version, created_at, updated_at) VALUES ('alice', 'totp', 'active', x'00', 1, 1, 1)`, true},
		{"previous release, with an audit entry", `INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details) VALUES (1, 'verify', '', 'bob', 'totp', 'client', 'deny', '', '', '{}')`, true},
		{"previous release, empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The previous release's schema: no install table.
			path := schemaBefore(t, "install")
			if tc.data != "" {
				db, err := sql.Open("sqlite", dsn(path, false))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(tc.data); err != nil {
					t.Fatalf("%s: %v", tc.data, err)
				}
				db.Close()
			}
			s, err := Open(t.Context(), path)
			if tc.wantOpen != (err == nil) {
				t.Fatalf("Open: %v; want success %v", err, tc.wantOpen)
			}
			if err == nil {
				closeStore(t, s)
			} else if !errors.Is(err, framework.ErrStoreNotInitialized) {
				t.Fatalf("Open refused with %v, not ErrStoreNotInitialized", err)
			}
		})
	}
}

// TestExternalLockBounded: another process holds the write lock (a backup
// tool's BEGIN IMMEDIATE). The first write waits busy_timeout and fails
// with ErrStoreUnavailable; the writes queued behind it then wait only
// shortBusy each, so ten of them are all answered within two
// busy_timeouts, not ten; after the lock goes, writes work.
func TestExternalLockBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	defer closeStore(t, s)
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	start := time.Now()
	_, errs := burst.Run2(10, func(i int) (framework.Enrollment, error) {
		return s.PutPending(t.Context(), framework.Enrollment{UserID: fmt.Sprint("u", i), Provider: "totp", State: []byte{1}, CreatedAt: now, UpdatedAt: now})
	})
	took := time.Since(start)
	for i, err := range errs {
		if !errors.Is(err, framework.ErrStoreUnavailable) {
			t.Fatalf("write %d under an external lock: %v, want ErrStoreUnavailable", i, err)
		}
	}
	// One full busy_timeout, then shortBusy each: about 6 s. Without the
	// bound each write waits busy_timeout in turn (50 s); the limit of two
	// busy_timeouts leaves room for a loaded CI machine under -race.
	if limit := 2 * busyTimeout; took > limit {
		t.Fatalf("10 writes under the lock took %v; the bound is %v", took, limit)
	}
	t.Logf("10 writes refused in %v", took.Round(time.Millisecond))
	if _, err := conn.ExecContext(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPending(t.Context(), framework.Enrollment{UserID: "after", Provider: "totp", State: []byte{1}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
}

// TestDeletedFileRefusesAtOnce: the database file unlinked under an open
// store. SQLite would write on to the deleted inode and lose it all at
// close; the very next write is refused with ErrStoreUnavailable, and so
// are reads from then on, until the file is back.
func TestDeletedFileRefusesAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	defer closeStore(t, s)
	now := time.Now().UTC()
	e := framework.Enrollment{UserID: "alice", Provider: "totp", State: []byte{1}, CreatedAt: now, UpdatedAt: now}
	if _, err := s.PutPending(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, path+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	e.UserID = "bob"
	if _, err := s.PutPending(t.Context(), e); !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("write right after the file was deleted: %v, want ErrStoreUnavailable", err)
	}
	if _, err := s.Get(t.Context(), "alice", "totp"); !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("read after the deletion was noticed: %v, want ErrStoreUnavailable", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.Rename(path+".aside", path); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the file back: %v", err)
	}
	if _, err := s.PutPending(t.Context(), e); err != nil {
		t.Fatalf("write with the file back: %v", err)
	}
}

// TestDeletedFileRefusesCommit: statements inside a transaction skip the
// file check, so the commit makes it: a file unlinked in the middle of a
// transaction fails its commit, and nothing of it is written.
func TestDeletedFileRefusesCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "twofactor.db")
	s := mustOpen(t, path)
	defer closeStore(t, s)
	err := s.inTx(t.Context(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(t.Context(), `DELETE FROM attempts`); err != nil {
			return err
		}
		if err := os.Link(path, path+".aside"); err != nil {
			return err
		}
		if err := os.Remove(path); err != nil {
			return err
		}
		_, err := tx.ExecContext(t.Context(), `INSERT INTO attempts (user_id, budget, failures, locked_until) VALUES ('alice', 'factor', 1, 0)`)
		return err
	})
	if !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("commit after the file was deleted: %v, want ErrStoreUnavailable", err)
	}
	if err := os.Rename(path+".aside", path); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the file back: %v", err)
	}
	if a, err := s.Attempts(t.Context(), "alice", framework.BudgetFactor); err != nil || a.Failures != 0 {
		t.Errorf("the refused transaction wrote: %+v, %v", a, err)
	}
}
