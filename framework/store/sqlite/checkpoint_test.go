package sqlite

import (
	"os"
	"testing"
	"time"
)

// TestCheckpointsOffTheCommit: the writer's commits leave the log to the
// background checkpoint (no commit copies pages into the database file
// until the log reaches the backstop's walAutoCheckpoint pages, where
// SQLite's default would at 1000), a round copies the log into the file,
// and after an idle round the log starts again in the same file.
func TestCheckpointsOffTheCommit(t *testing.T) {
	defer func(d time.Duration) { checkpointEvery = d }(checkpointEvery)
	checkpointEvery = time.Hour // the test runs the rounds
	s := openTemp(t)
	defer closeStore(t, s)
	path := s.watch.path

	for _, tc := range []struct {
		pragma string
		want   int
	}{{"wal_autocheckpoint", walAutoCheckpoint}, {"journal_size_limit", walSizeLimit}} {
		var got int
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil || got != tc.want {
			t.Errorf("writer's PRAGMA %s = %d, %v; want %d", tc.pragma, got, err, tc.want)
		}
	}
	if err := s.checkpoints.round(t.Context()); err != nil { // Open's own writes
		t.Fatal(err)
	}
	size := func(p string) int64 {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size(path)
	// About 1500 pages in 30 commits: past SQLite's default threshold.
	for range 30 {
		if _, err := s.w.ExecContext(t.Context(), `
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
			INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
			SELECT i, 'verify', '', 'u', 'totp', 'client', 'allow', '', '', hex(randomblob(2000)) FROM n`); err != nil {
			t.Fatal(err)
		}
	}
	if got := size(path); got != before {
		t.Fatalf("the commits copied pages into the database file: %d bytes, was %d", got, before)
	}
	if wal := size(path + "-wal"); wal < 1000*4096 {
		t.Fatalf("log of %d bytes after about 1500 pages of commits", wal)
	}
	if err := s.checkpoints.round(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := size(path); got < before+1000*4096 {
		t.Fatalf("after a round the database file is %d bytes, was %d: the log was not copied", got, before)
	}
	if wal := size(path + "-wal"); wal == 0 {
		t.Fatal("a round after writes emptied the log (a RESTART waits for the writer; a busy round must not)")
	}
	walSize := size(path + "-wal")
	if err := s.checkpoints.round(t.Context()); err != nil { // idle
		t.Fatal(err)
	}
	// The idle round keeps the log file's blocks, and the next write
	// starts the log again from its beginning: a few frames in a file
	// that did not grow.
	if wal := size(path + "-wal"); wal != walSize {
		t.Fatalf("log of %d bytes after an idle round, was %d: the file was not kept", wal, walSize)
	}
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO audit (at, event, actor, user_id, provider, audience, outcome, reason, client_ip, details)
		VALUES (0, 'verify', '', 'u', 'totp', 'client', 'allow', '', '', '')`); err != nil {
		t.Fatal(err)
	}
	var busy, frames, copied int
	if err := s.checkpoints.db.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	if frames > 10 || size(path+"-wal") != walSize {
		t.Fatalf("after an idle round and one insert: %d frames in a log of %d bytes (was %d): the log did not start again", frames, size(path+"-wal"), walSize)
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM audit`).Scan(&n); err != nil || n != 1501 {
		t.Fatalf("audit rows after the checkpoints: %d, %v", n, err)
	}
}
