//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// writable reports a database whose file, log or folder can no longer be
// written (a chmod, chattr +i, a read-only remount). access(2) asks the
// kernel the question it will ask at the next open, and unlike a write it
// costs nothing and changes nothing: the store's own connections were
// opened before the change and may keep writing through their open
// descriptors until a checkpoint or a reopen fails, so the store treats
// the answer as the truth rather than wait for that failure.
func writable(path string) error {
	for _, p := range []string{path, path + "-wal", filepath.Dir(path)} {
		err := unix.Access(p, unix.W_OK)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue // no log yet
		}
		if err != nil {
			return fmt.Errorf("%s is not writable: %w", p, err)
		}
	}
	return nil
}

// roomFor reports a nearly full file system under the database (see
// minFreeBytes).
func roomFor(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", filepath.Dir(path), err)
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFreeBytes {
		return fmt.Errorf("the file system of %s is full (%d bytes free)", path, free)
	}
	return nil
}
