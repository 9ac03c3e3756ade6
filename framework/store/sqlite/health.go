package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// fileCheckEvery is how often the store checks that its path still names
// the file it opened. A stat is a few microseconds; once a second bounds
// how long writes can go to a deleted file and how long /readyz takes to
// notice, well inside the "within 5 s" the readiness check promises.
const fileCheckEvery = time.Second

// fileWatch notices the database file deleted, moved away or replaced
// under the running store. SQLite notices none of these: it keeps the
// open inode and writes there, so the enrollments written after a mistaken
// cleanup would vanish at the next restart. The verdict is shared with the
// connector, which then refuses every statement (503 store_unavailable)
// until the same file is back at the path. A file that may no longer be
// written (see writable) is refused the same way.
type fileWatch struct {
	path   string
	opened os.FileInfo
	fault  atomic.Pointer[error]
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newFileWatch(path string) (*fileWatch, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &fileWatch{path: path, opened: fi, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// check compares the path with the opened file and checks that it may
// still be written, records the verdict and returns it.
func (w *fileWatch) check() error {
	err := w.identity()
	if err == nil {
		err = writable(w.path)
	}
	if err == nil {
		w.fault.Store(nil)
		return nil
	}
	return w.failed(err)
}

// beforeWrite runs ahead of every statement on the writer connection: a
// stat, a microsecond beside the commit's fsync, so that not even the
// writes of the second between two checks go to a deleted file.
func (w *fileWatch) beforeWrite() error {
	if err := w.identity(); err != nil {
		return w.failed(err)
	}
	return nil
}

func (w *fileWatch) failed(err error) error {
	err = framework.StoreUnavailable(err)
	w.fault.Store(&err)
	return err
}

// identity reports the path no longer naming the file opened.
func (w *fileWatch) identity() error {
	fi, err := os.Stat(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("database file %s was deleted or moved while open", w.path)
	case err != nil:
		return fmt.Errorf("database file %s: %w", w.path, err)
	case !os.SameFile(fi, w.opened):
		return fmt.Errorf("database file %s was replaced by another file while open", w.path)
	}
	return nil
}

func (w *fileWatch) run() {
	defer close(w.done)
	t := time.NewTicker(fileCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.check()
		}
	}
}

func (w *fileWatch) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// minFreeBytes: below this much free space on the database's file system,
// the store reports itself not ready. SQLite fails a write that needs a
// new page with SQLITE_FULL, but a WAL that reuses its frames can go on
// succeeding on a full disk for a while, so the write probe alone would
// answer ready until the next growth fails a user's request.
const minFreeBytes = 256 << 10

// Ping reports whether the store can take writes and serve reads, for
// readiness checks: the open file is still the configured one, the file
// system has room and lets us write, and a real write (one small UPDATE
// on the writer connection, so it waits behind any write in progress)
// and a read succeed. Every failure is wrapped in
// framework.StoreUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ping(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", framework.StoreUnavailable(err))
	}
	return nil
}

func (s *Store) ping(ctx context.Context) error {
	if err := s.watch.check(); err != nil {
		return err
	}
	if err := roomFor(s.watch.path); err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE install SET probed_at = ? WHERE id = 1`, time.Now().UnixNano()); err != nil {
		return err
	}
	var n int
	return s.r.QueryRowContext(ctx, `SELECT count(*) FROM install`).Scan(&n)
}

// InstallID returns the mark Create wrote (or the upgrade migration, for a
// store an earlier release filled), or "" for an unmarked store.
func (s *Store) InstallID(ctx context.Context) (string, error) {
	return installID(ctx, s.w.DB)
}

func installID(ctx context.Context, db *sql.DB) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, `SELECT install_id FROM install WHERE id = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read install mark: %w", err)
	}
	return id, nil
}

// mark writes the install mark unless there is one, and returns it.
func mark(ctx context.Context, db *sql.DB) (string, error) {
	if _, err := db.ExecContext(ctx,
		`INSERT INTO install (id, install_id, created_at) VALUES (1, lower(hex(randomblob(16))), ?) ON CONFLICT (id) DO NOTHING`,
		time.Now().UnixNano()); err != nil {
		return "", fmt.Errorf("write install mark: %w", err)
	}
	return installID(ctx, db)
}
