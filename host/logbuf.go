package host

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogWindow is how long a busy host holds its log lines before writing
// them in one go.
const LogWindow = 100 * time.Millisecond

// maxLogBuffer bounds what a window holds: a burst past it is written at
// once rather than held in memory.
const maxLogBuffer = 64 << 10

// LogBuffer coalesces the host's log lines under load. Every request logs
// a line (with its X-Request-Id, which operators use to follow a request),
// and writing each with a syscall of its own cost the login path a few
// per cent of its CPU (issue 16). So:
//
//   - a line that comes while the log is idle is written at once, as
//     before: a lone error is never held back;
//   - it opens a window of LogWindow; lines during the window are held
//     and written together when it ends, and a window that wrote
//     something opens the next one; a window with nothing to write closes
//     it, and the log is idle again;
//   - a warning or an error (hclog hands each line's level to LevelWrite)
//     is written at once, after the lines held before it: those are the
//     lines that explain a crash, a SIGKILL or an OOM kill that may
//     follow within the window;
//   - Close writes what is held: a clean stop loses no line.
//
// A crash or a SIGKILL under load can lose the last window's info and
// debug lines (at most LogWindow of them). They are diagnostics, not the
// record: every decision is in the audit log, committed before its
// answer.
type LogBuffer struct {
	out   io.Writer
	after func(time.Duration, func()) // time.AfterFunc; tests fire windows by hand

	mu     sync.Mutex
	buf    []byte
	open   bool // a window is open: lines are held until it ends
	closed bool
	err    error // the last error writing held lines, returned by the next Write
}

// NewLogBuffer returns a LogBuffer writing to out.
func NewLogBuffer(out io.Writer) *LogBuffer {
	return newLogBuffer(out, func(d time.Duration, f func()) { time.AfterFunc(d, f) })
}

func newLogBuffer(out io.Writer, after func(time.Duration, func())) *LogBuffer {
	return &LogBuffer{out: out, after: after}
}

var _ hclog.LevelWriter = (*LogBuffer)(nil)

// LevelWrite takes one log line of the given level: hclog calls it
// instead of Write when the output has it.
func (b *LogBuffer) LevelWrite(level hclog.Level, p []byte) (int, error) {
	if level < hclog.Warn {
		return b.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.flushLocked()
	n, err := b.out.Write(p) // tried even when the held lines failed
	return n, errors.Join(held, err)
}

// Write takes one log line (hclog writes each line in one call).
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.out.Write(p)
	}
	if !b.open {
		b.open = true
		b.after(LogWindow, b.endWindow)
		return b.out.Write(p)
	}
	if len(b.buf)+len(p) > maxLogBuffer {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	if err := b.err; err != nil {
		b.err = nil
		return len(p), err
	}
	return len(p), nil
}

// endWindow writes what the window held and opens the next window, or
// closes it when nothing came.
func (b *LogBuffer) endWindow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if len(b.buf) == 0 {
		b.open = false
		return
	}
	b.err = b.flushLocked()
	b.after(LogWindow, b.endWindow)
}

func (b *LogBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.out.Write(b.buf)
	// A large burst's buffer is not kept for the quiet time after it.
	if cap(b.buf) > maxLogBuffer {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// Close writes what is held; later lines are written at once.
func (b *LogBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}
