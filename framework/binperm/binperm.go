// Package binperm refuses to run a plugin binary that someone other than
// its owner could have replaced, as OpenSSH's StrictModes refuses a
// writable authorized_keys: the host runs the binary with its own rights
// and hands it every user's decrypted factor state, so whoever can write
// the file, or rename entries in a folder on the way to it, owns the host.
//
// The rule, for the binary and each folder from it up to the root, along
// the path as configured and, if a symlink is involved, along the path it
// resolves to:
//   - the owner is root or the user the host runs as;
//   - group and others cannot write it. A folder above the binary's own
//     that has the sticky bit and is owned by root (/tmp) passes: there
//     nobody can rename or delete an entry they do not own, and the entry
//     below it is checked in turn. The binary and its folder get no such
//     exception.
package binperm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Error is a binary refused for its permissions: Path is the file or
// folder at fault (the binary or one on its way), Fix the command that
// repairs it.
type Error struct {
	Binary string
	Path   string
	Reason string
	Fix    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("plugin binary %s: %s %s, so it could be replaced with other code; fix: %s", e.Binary, e.Path, e.Reason, e.Fix)
}

// Check returns a *Error when binary, or a folder on the way to it, could
// be written by anyone but root or the user this process runs as; any
// other error when a path cannot be read.
func Check(binary string) error {
	if !enforced {
		return nil
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		return fmt.Errorf("plugin binary %s: %w", binary, err)
	}
	if err := checkChain(abs, abs); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("plugin binary %s: %w", binary, err)
	}
	if real != abs {
		return checkChain(abs, real)
	}
	return nil
}

// checkChain checks path and every folder above it.
func checkChain(binary, path string) error {
	own := filepath.Dir(path)
	euid := os.Geteuid()
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("plugin binary %s: %w", binary, err)
		}
		// A symlink's own mode means nothing; its folder is next in the
		// chain and its target is checked by Check.
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := checkOne(binary, p, fi, p == path || p == own, euid); err != nil {
				return err
			}
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

func checkOne(binary, p string, fi fs.FileInfo, strict bool, euid int) error {
	uid, known := owner(fi)
	if known && uid != 0 && uid != euid {
		return &Error{Binary: binary, Path: p,
			Reason: fmt.Sprintf("is owned by uid %d, neither root nor the user running twofactor (uid %d)", uid, euid),
			Fix:    "chown root " + p}
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	if !strict && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && known && uid == 0 {
		return nil // like /tmp: see the package comment
	}
	return &Error{Binary: binary, Path: p,
		Reason: fmt.Sprintf("is writable by group or others (mode %04o)", perm),
		Fix:    "chmod go-w " + p}
}
