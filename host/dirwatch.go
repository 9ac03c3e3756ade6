package host

import "github.com/fsnotify/fsnotify"

// dirWatcher watches folders for the config watcher: on Linux with
// inotify and a narrower mask than fsnotify's (dirwatch_linux.go),
// elsewhere with fsnotify.
type dirWatcher struct {
	Events <-chan fsnotify.Event
	Errors <-chan error
	add    func(dir string) error
	close  func() error
}

func (d *dirWatcher) Add(dir string) error { return d.add(dir) }
func (d *dirWatcher) Close() error         { return d.close() }
