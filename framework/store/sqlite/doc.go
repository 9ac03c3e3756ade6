// Package sqlite is the embedded framework.Store: one SQLite file, no server,
// the default for a single host. It uses modernc.org/sqlite, a pure-Go
// SQLite, so the host builds without cgo.
//
// The file is opened in WAL mode with synchronous=FULL: every commit is on
// disk before it is acknowledged, and reads never wait for the writer. The
// log is copied back into the file by a background checkpoint, not inside
// a commit (checkpoint.go). The
// file and its -wal/-shm companions are created readable by the owner only.
// The schema is created and migrated by Open, under SQLite's write lock, so
// several processes may Open the same file at once; they then share it,
// waiting up to five seconds for each other's writes. Scaling past one
// machine is the PostgreSQL store's job, not this one's.
package sqlite
