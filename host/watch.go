package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/twofactor/twofactor/framework/binperm"
)

// The config watcher must never die: a deploy tool that deletes and writes
// the file again, sed -i (which renames a new file over it), a Kubernetes
// ConfigMap (a symlink swapped atomically) and a folder briefly missing
// must all end in the new file being read. It therefore:
//
//   - watches the folders of the config path and of every link on the way
//     to the real file, not the file itself (a watch on a file dies with
//     the file), and keeps only the events that name one of those paths:
//     the database and its WAL live in the same folder by default, and
//     each of their writes must not wake a reload. On Linux the kernel is
//     not even asked for writes to files held open (dirwatch_linux.go):
//     the watcher wakes when a writer closes the file;
//   - re-arms (re-resolves the links and watches the folders again) after
//     any create, remove or rename of a watched name, after a watcher
//     error, on SIGHUP, and whenever it could not arm, once a second;
//   - also compares the file's SHA-256 with the last one seen (at first,
//     the one loaded) every pollEvery, so that an event lost by the kernel
//     (the inotify queue overflows), a file system without notifications,
//     or a change made before the watcher started delays a change by a
//     few seconds instead of hiding it. The file is small; reading it
//     every two seconds costs nothing.

// pollEvery bounds how late a change is seen when no event arrives.
const pollEvery = 2 * time.Second

// rearmEvery is how often an unarmed watcher tries again.
const rearmEvery = time.Second

// watchStatus is what GET /v1/config/status shows of the watcher.
type watchStatus struct {
	Watching  bool
	LastError string
	ErrorAt   time.Time
}

type configWatcher struct {
	path    string
	loaded  string // the fingerprint of the file as loaded
	changed func() // called for each relevant change; debounced by the caller
	rearm   chan struct{}

	mu     sync.Mutex
	status watchStatus
}

// newConfigWatcher watches path, whose fingerprint when it was loaded is
// loaded (fingerprintOf the config's Hash and Mode): a change made
// between the load and the watcher's start is seen when it arms.
func newConfigWatcher(path, loaded string, changed func()) *configWatcher {
	return &configWatcher{path: path, loaded: loaded, changed: changed, rearm: make(chan struct{}, 1)}
}

// Rearm asks the watcher to resolve the path and watch its folders again.
func (w *configWatcher) Rearm() {
	select {
	case w.rearm <- struct{}{}:
	default:
	}
}

func (w *configWatcher) Status() watchStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

func (w *configWatcher) set(watching bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.Watching = watching
	if err != nil {
		w.status.LastError, w.status.ErrorAt = err.Error(), time.Now()
	}
}

// run watches until ctx ends. onErr reports each error (to the log), but
// not the same error again and again while it retries once a second.
func (w *configWatcher) run(ctx context.Context, report func(error)) {
	defer w.set(false, nil)
	var logged string
	onErr := func(err error) {
		if err.Error() != logged {
			logged = err.Error()
			report(err)
		}
	}
	last := w.loaded
	for ctx.Err() == nil {
		fw, names, err := w.arm()
		if err != nil {
			w.set(false, err)
			onErr(err)
			select {
			case <-ctx.Done():
			case <-w.rearm:
			case <-time.After(rearmEvery):
			}
			// The file may have changed while nothing watched it.
			if fp := w.fingerprint(); fp != last {
				last = fp
				w.changed()
			}
			continue
		}
		w.set(true, nil)
		logged = ""
		// What changed while nothing watched (before the first arming, or
		// between two) is read now, not at the next poll.
		if fp := w.fingerprint(); fp != last {
			last = fp
			w.changed()
		}
		last = w.watch(ctx, fw, names, last, onErr)
		fw.Close()
	}
}

// watch serves one armed watcher until it must be re-armed or ctx ends,
// and returns the fingerprint last seen.
func (w *configWatcher) watch(ctx context.Context, fw *dirWatcher, names map[string]bool, last string, onErr func(error)) string {
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return last
		case <-w.rearm:
			return last
		case ev, ok := <-fw.Events:
			if !ok {
				return last
			}
			if !names[filepath.Clean(ev.Name)] {
				continue // the database, its WAL, an editor's swap file
			}
			// A touch or a rewrite with the same bytes is no change to
			// read; a chmod is (fingerprint).
			if fp := w.fingerprint(); fp != last {
				last = fp
				w.changed()
			}
			if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
				return last // a name now points elsewhere: resolve again
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return last
			}
			w.set(true, err)
			onErr(err)
			return last
		case <-poll.C:
			if fp := w.fingerprint(); fp != last {
				w.changed()
				return fp
			}
		}
	}
}

// arm resolves the path's chain of links and watches the folder of each
// name on it; names are the paths whose events matter.
func (w *configWatcher) arm() (*dirWatcher, map[string]bool, error) {
	names, err := chain(w.path)
	if err != nil {
		return nil, nil, err
	}
	fw, err := newDirWatcher()
	if err != nil {
		return nil, nil, fmt.Errorf("config watch: %w", err)
	}
	dirs := map[string]bool{}
	for n := range names {
		dirs[filepath.Dir(n)] = true
	}
	for d := range dirs {
		if err := fw.Add(d); err != nil {
			fw.Close()
			return nil, nil, fmt.Errorf("config watch: watch folder %s: %w", d, err)
		}
	}
	return fw, names, nil
}

// chain returns every symlink met resolving path (the file's own links,
// each hop of a chain of them and those among its folders, each under the
// real path of its folder) and the file it leads to, as binperm.Resolve
// finds them. A missing final file is not an error: its folder is watched
// for it to appear.
func chain(path string) (map[string]bool, error) {
	paths, err := binperm.Resolve(path)
	if err != nil {
		return nil, fmt.Errorf("config watch: %w", err)
	}
	names := make(map[string]bool, len(paths))
	for _, p := range paths {
		names[p] = true
	}
	return names, nil
}

// fingerprint is the SHA-256 of the file the path leads to now with its
// permission bits, or "missing". The mode is part of it because who may
// read the file decides what of it may load (secrets inline in a file
// others can read are refused, config.Load and the provider's Exposed
// settings): a chmod that opens the file to others reloads, and that
// reload is refused, logged, audited and shown in the status, instead of
// waiting for the next edit; the chmod that closes it again reloads too.
func (w *configWatcher) fingerprint() string {
	h, err := fileHashOf(w.path)
	if err != nil {
		return "missing"
	}
	fi, err := os.Stat(w.path)
	if err != nil {
		return "missing"
	}
	return fingerprintOf(h, fi.Mode())
}

func fingerprintOf(hash string, mode os.FileMode) string {
	return fmt.Sprintf("%s %04o", hash, mode.Perm())
}
