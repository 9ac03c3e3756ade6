//go:build bench && linux

package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for the commit floor
)

// fsyncFloor measures, in the folder the SQLite files go to, the two
// floors of a durable write: 4 KiB appended and fsynced, and one
// autocommit INSERT into SQLite with the store's settings (WAL,
// synchronous=FULL). Every verify commits at least once (its audit
// entry), and the store has one writer connection, so the second caps
// verifies/s on SQLite.
func (r *report) fsyncFloor(dir string) error {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	for range 200 {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	r.fsync = medianDur(lat)

	commit, err := sqliteCommit(filepath.Join(dir, "floor.db"), 300)
	if err != nil {
		return err
	}
	r.commit = commit
	r.printf("## Physical floor of a durable commit\n\n")
	r.printf("| in the SQLite folder, one after another | median | at most |\n|---|---:|---:|\n")
	r.printf("| append 4 KiB + fsync (200 times) | %s | %.0f/s |\n", fmtDur(r.fsync), float64(time.Second)/float64(r.fsync))
	r.printf("| one autocommit INSERT, SQLite WAL + synchronous=FULL (300 times) | %s | %.0f/s |\n\n", fmtDur(commit), float64(time.Second)/float64(commit))
	r.printf("Each verify commits at least once (its audit entry) and the SQLite store writes through one connection, " +
		"so the second line bounds verifies/s on SQLite unless commits are batched.\n\n")
	return nil
}

// sqliteCommit is the median time of n autocommit INSERTs into a fresh
// SQLite file opened as the store opens it.
func sqliteCommit(path string, n int) (time.Duration, error) {
	defer os.Remove(path)
	defer os.Remove(path + "-wal")
	defer os.Remove(path + "-shm")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		return 0, err
	}
	row := make([]byte, 200) // about an audit entry
	var lat []time.Duration
	for range n {
		t := time.Now()
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, row); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t))
	}
	return medianDur(lat), nil
}
