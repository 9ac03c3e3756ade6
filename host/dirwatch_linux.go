//go:build linux

package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// dirMask is what the config watcher asks the kernel for. fsnotify asks
// for every write (IN_MODIFY), and the config's folder is where the
// database and its WAL live by default: each SQLite write woke the
// watcher, only for it to drop the event by name (1-2% of a busy login
// host's CPU, issue 16). A config is read when its writer closes it
// (IN_CLOSE_WRITE), which also never reads a half-written file; SQLite
// keeps its files open, so its writes raise nothing here. A writer that
// never closes the file is caught by the poll (pollEvery).
const dirMask = unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// newDirWatcher watches folders with inotify directly, for dirMask's
// events only, and reports them as fsnotify's events so that the watch
// loop is the same on every system.
func newDirWatcher() (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	// Non-blocking, so the runtime's poller reads it and Close ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	events := make(chan fsnotify.Event)
	errs := make(chan error)
	done := make(chan struct{})
	iw := &inotifyWatch{fd: fd, dirs: map[int32]string{}}
	go iw.read(f, events, errs, done)
	var once sync.Once
	return &dirWatcher{
		Events: events,
		Errors: errs,
		add:    iw.add,
		close: func() error {
			var err error
			once.Do(func() {
				close(done)
				err = f.Close()
			})
			return err
		},
	}, nil
}

type inotifyWatch struct {
	fd   int
	mu   sync.Mutex
	dirs map[int32]string // watch descriptor -> folder
}

func (iw *inotifyWatch) add(dir string) error {
	wd, err := unix.InotifyAddWatch(iw.fd, dir, dirMask)
	if err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	iw.mu.Lock()
	iw.dirs[int32(wd)] = dir
	iw.mu.Unlock()
	return nil
}

func (iw *inotifyWatch) folder(wd int32) (string, bool) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	d, ok := iw.dirs[wd]
	return d, ok
}

// read turns the kernel's events into fsnotify's until the watcher is
// closed, then closes both channels.
func (iw *inotifyWatch) read(f *os.File, events chan<- fsnotify.Event, errs chan<- error, done <-chan struct{}) {
	defer close(events)
	defer close(errs)
	send := func(ev fsnotify.Event) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	fail := func(err error) {
		select {
		case errs <- err:
		case <-done:
		}
	}
	var buf [64 * (unix.SizeofInotifyEvent + unix.NAME_MAX + 1)]byte
	for {
		n, err := f.Read(buf[:])
		if err != nil {
			select {
			case <-done:
			default:
				if !errors.Is(err, os.ErrClosed) {
					fail(fmt.Errorf("inotify: %w", err))
				}
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			end := off + unix.SizeofInotifyEvent + int(raw.Len)
			if end > n {
				fail(errors.New("inotify: truncated event"))
				return
			}
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
			off = end
			if raw.Mask&unix.IN_Q_OVERFLOW != 0 {
				fail(fsnotify.ErrEventOverflow)
				continue
			}
			dir, ok := iw.folder(raw.Wd)
			if !ok || raw.Mask&unix.IN_IGNORED != 0 {
				continue
			}
			ev := fsnotify.Event{Name: dir}
			if name != "" {
				ev.Name = filepath.Join(dir, name)
			}
			ev.Op = opOf(raw.Mask)
			if ev.Op != 0 && !send(ev) {
				return
			}
		}
	}
}

// opOf maps dirMask's events to fsnotify's kinds, as fsnotify does.
func opOf(mask uint32) fsnotify.Op {
	var op fsnotify.Op
	if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		op |= fsnotify.Create
	}
	if mask&(unix.IN_DELETE|unix.IN_DELETE_SELF) != 0 {
		op |= fsnotify.Remove
	}
	if mask&(unix.IN_MOVED_FROM|unix.IN_MOVE_SELF) != 0 {
		op |= fsnotify.Rename
	}
	if mask&unix.IN_CLOSE_WRITE != 0 {
		op |= fsnotify.Write
	}
	if mask&unix.IN_ATTRIB != 0 {
		op |= fsnotify.Chmod
	}
	return op
}
