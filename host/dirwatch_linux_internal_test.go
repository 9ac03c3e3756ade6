//go:build linux

package host

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// TestDirWatcherSkipsWritesToOpenFiles: writes to a file held open, as
// SQLite holds its database and WAL, raise no event; a file's writer
// closing it, a create, a rename and a remove do. The events are read in
// order, so the first one after the writes says whether they raised any.
func TestDirWatcherSkipsWritesToOpenFiles(t *testing.T) {
	dir := t.TempDir()
	wal, err := os.Create(filepath.Join(dir, "twofactor.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	dw, err := newDirWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer dw.Close()
	if err := dw.Add(dir); err != nil {
		t.Fatal(err)
	}
	next := func() fsnotify.Event {
		t.Helper()
		select {
		case ev := <-dw.Events:
			return ev
		case err := <-dw.Errors:
			t.Fatalf("watch error: %v", err)
		}
		return fsnotify.Event{}
	}
	want := func(name string, op fsnotify.Op) {
		t.Helper()
		if ev := next(); ev.Name != filepath.Join(dir, name) || !ev.Has(op) {
			t.Fatalf("event %v, want %s on %s", ev, op, name)
		}
	}

	for range 100 {
		if _, err := wal.Write([]byte("page")); err != nil {
			t.Fatal(err)
		}
	}
	if err := wal.Sync(); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twofactor.yaml")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want("twofactor.yaml", fsnotify.Create) // not a write to the WAL
	if _, err := f.Write([]byte("listen: 127.0.0.1:0\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want("twofactor.yaml", fsnotify.Write) // written and closed
	tmp := filepath.Join(dir, ".sedXXXX")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(".sedXXXX", fsnotify.Create)
	want(".sedXXXX", fsnotify.Write)
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	want(".sedXXXX", fsnotify.Rename)
	want("twofactor.yaml", fsnotify.Create)
	if err := os.Chmod(cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	want("twofactor.yaml", fsnotify.Chmod)
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	want("twofactor.yaml", fsnotify.Remove)
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-dw.Events; ok {
		t.Fatal("events still flow after Close")
	}
}
