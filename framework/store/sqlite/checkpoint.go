package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints (copying the log's pages back into the database file) run
// on a connection of their own, off the commit path.
//
// SQLite's default is an automatic checkpoint inside the commit that
// takes the log past 1000 pages: the writer connection copies the pages
// and fsyncs the database file before its COMMIT returns, so the batch of
// decisions waiting on that commit waits for the checkpoint too, and the
// next batch waits behind it on the single writer. A profile of the login
// bench had 4% of the host's CPU in those checkpoints, all of it on the
// writer. A PASSIVE checkpoint on another connection copies the same pages
// while the writer goes on appending to the log (it takes neither the
// write lock nor the readers'), and copies a page written many times
// between two checkpoints (the audit table's tail, an index's hot leaf)
// once.
//
// The log stays bounded: the writer keeps an automatic checkpoint, at
// walAutoCheckpoint pages instead of 1000, as a backstop for a background
// checkpoint that falls behind (a long read pins an old snapshot, the
// goroutine is starved); once a checkpoint has copied the whole log, the
// next write starts it again from its beginning; journal_size_limit
// truncates a log file that grew past walSizeLimit when that happens; and
// when the store has been idle for a round, a RESTART checkpoint makes
// sure the whole log was copied, so that the next write starts it again
// from its beginning.
//
// The idle round does not empty the log file (TRUNCATE did, until this
// was measured): a write into an empty file must allocate its blocks and
// change its size, and fsync then commits that to the file system's
// journal too, so the first login after a pause paid for it. Committing
// one decision after an idle round, 60 times per mode alternated, p50:
// 897, 635, 597, 1055 us after a TRUNCATE against 751, 555, 479, 854 us
// after a RESTART. The file keeps at most walSizeLimit bytes of blocks
// (journal_size_limit, applied when the log restarts).
//
// Durability is unchanged: a commit is durable once its frames are in the
// log and the log is fsynced (synchronous=FULL), which the commit still
// does before it returns; a checkpoint only moves committed pages, and
// fsyncs the log and then the database file itself. A crash between two
// checkpoints leaves a longer log, which the next open replays.
const (
	// walAutoCheckpoint is the writer's own checkpoint threshold, in
	// pages: about 16 s of logins at the c=32 bench rate before the
	// background checkpoint would have to be missing, 64 MiB of log.
	walAutoCheckpoint = 16384
	// walSizeLimit is journal_size_limit, in bytes.
	walSizeLimit = 64 << 20
	// checkpointBusy bounds how long a checkpoint waits for a lock. A
	// PASSIVE checkpoint waits for none; a RESTART waits for the writer
	// and the readers, and the writer waits for it meanwhile, so it gives
	// up early and is tried again at the next idle round.
	checkpointBusy = 100 * time.Millisecond
)

// checkpointEvery is the period of the background checkpoint. Each round
// copies about a quarter of a second of commits (a thousand pages at the
// login bench's rate, as often as SQLite's default would). A variable so
// that tests can take the rounds in hand (checkpointer.round).
var checkpointEvery = 250 * time.Millisecond

// checkpointer runs the background checkpoints.
type checkpointer struct {
	db *sql.DB
	// wrote is set by the writer connection (connector.wrote) on every
	// write, and cleared by each round: a round without writes is idle.
	wrote *atomic.Bool
	// pending: the log may hold frames not yet copied, or not yet
	// restartable (a reader held them), so an idle round restarts it.
	pending bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newCheckpointer(path string, fault *atomic.Pointer[error], wrote *atomic.Bool) *checkpointer {
	db := sql.OpenDB(&connector{dsn: dsnBusy(path, false, checkpointBusy), fault: fault, busy: checkpointBusy})
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return &checkpointer{db: db, wrote: wrote, pending: true, stop: make(chan struct{}), done: make(chan struct{})}
}

func (c *checkpointer) run(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// A failed round is retried at the next: the writer's
			// commits report a full disk or a lost file themselves, and
			// the backstop bounds the log meanwhile.
			_ = c.round(context.Background())
		}
	}
}

// round is one background checkpoint: PASSIVE when something was written
// since the last round, else a RESTART, once, so that the next write
// starts the log from its beginning.
func (c *checkpointer) round(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, busyTimeout)
	defer cancel()
	if c.wrote.Swap(false) {
		c.pending = true
		_, err := c.checkpoint(ctx, "PASSIVE")
		return err
	}
	if !c.pending {
		return nil
	}
	busy, err := c.checkpoint(ctx, "RESTART")
	if err == nil && !busy {
		c.pending = false
	}
	return err
}

// checkpoint runs PRAGMA wal_checkpoint(mode) and reports whether it was
// kept from finishing by a reader or the writer.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (busy bool, err error) {
	var b, log, done int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &log, &done); err != nil {
		return false, fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	return b != 0, nil
}

func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
