//go:build !linux

package host

import "github.com/fsnotify/fsnotify"

// newDirWatcher watches folders with fsnotify, which on these systems
// (kqueue, ReadDirectoryChangesW) is already what the watcher needs.
func newDirWatcher() (*dirWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &dirWatcher{Events: fw.Events, Errors: fw.Errors, add: fw.Add, close: fw.Close}, nil
}
