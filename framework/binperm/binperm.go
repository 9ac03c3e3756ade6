// Package binperm refuses to run a plugin binary that someone other than
// its owner could have replaced, as OpenSSH's StrictModes refuses a
// writable authorized_keys: the host runs the binary with its own rights
// and hands it every user's decrypted factor state, so whoever can write
// the file, or rename entries in a folder on the way to it, owns the host.
//
// The rule, for the binary and each folder from it up to the root, and
// for every symbolic link met resolving its path (one link at a time, as
// the kernel does: the binary's own links, each hop of a chain of them,
// and links among its folders) and each folder above that link:
//   - the owner is root or the user the host runs as;
//   - group and others cannot write it. A folder above the binary's own
//     that has the sticky bit and is owned by root (/tmp) passes: there
//     nobody can rename or delete an entry they do not own, and the entry
//     below it is checked in turn. The binary and its folder get no such
//     exception. A link's own mode means nothing; its owner must be root or
//     the host's user too (in a sticky folder its owner may repoint it).
package binperm

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Error is a file refused for its permissions: Binary is the file checked
// (a plugin binary, or with What set another file the host trusts), Path
// the file, folder or link at fault (it or one on its way), Fix the
// command that repairs it.
type Error struct {
	What   string // "" for a plugin binary; "config file" (CheckFile)
	Binary string
	Path   string
	Reason string
	Fix    string
}

func (e *Error) Error() string {
	if e.What == "" {
		return fmt.Sprintf("plugin binary %s: %s %s, so it could be replaced with other code; fix: %s", e.Binary, e.Path, e.Reason, e.Fix)
	}
	return fmt.Sprintf("%s %s: %s %s, so another user could replace it; fix: %s", e.What, e.Binary, e.Path, e.Reason, e.Fix)
}

// Check returns a *Error when binary, or a folder on the way to it, could
// be written by anyone but root or the user this process runs as; any
// other error when a path cannot be read.
func Check(binary string) error { return CheckFile("", binary) }

// CheckFile is Check for another file the host trusts as it trusts its
// plugins — its config file, which names the admin API keys and the
// providers' servers and is reloaded on every change. what names it in
// errors ("config file"; "" is a plugin binary).
func CheckFile(what, path string) error {
	if !Enforced {
		return nil
	}
	label := cmp.Or(what, "plugin binary")
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", label, path, err)
	}
	steps, err := resolve(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", label, path, err)
	}
	for _, s := range steps {
		if err := checkChain(&Error{What: what, Binary: abs}, s); err != nil {
			return err
		}
	}
	return nil
}

// MaxLinks bounds the symbolic links followed resolving one path, as the
// kernel's ELOOP does (40 on Linux): more is taken for a loop.
const MaxLinks = 40

// step is one name met resolving a path: a symbolic link, or (last) the
// file the path leads to. Its folder holds no link: it is a real path.
type step struct {
	path string
	// leaf: a name of the file itself (a link to the file, or the file),
	// not of a folder on the way to it.
	leaf bool
}

// Resolve follows path one name at a time, as the kernel does, and
// returns every symbolic link met on the way — the file's own links and
// those among its folders, each named under the real path of the folder
// that holds it — and last the file it leads to. Whoever can rename an
// entry in the folder of any of them decides what path opens. A missing
// name ends the walk without an error: the last path is then the one
// that is missing (a watcher waits for it to appear). More than MaxLinks
// links is an error.
func Resolve(path string) ([]string, error) {
	steps, err := resolve(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.path
	}
	return out, nil
}

func resolve(path string) ([]step, error) {
	// Not filepath.Abs: it cleans "link/.." away, where the kernel goes
	// to the link's target's parent.
	sep := string(filepath.Separator)
	abs := path
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		abs = wd + sep + path
	}
	vol := filepath.VolumeName(abs)
	done := vol + sep // what is resolved so far: a path without links
	rest := names(abs[len(vol):])
	var steps []step
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			done = filepath.Dir(done) // done is real: its parent is too
			continue
		}
		p := filepath.Join(done, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return append(steps, step{path: filepath.Join(append([]string{p}, rest...)...), leaf: true}), nil
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = p
			continue
		}
		if links++; links > MaxLinks {
			return nil, fmt.Errorf("more than %d symlinks resolving %s (a loop?)", MaxLinks, path)
		}
		steps = append(steps, step{path: p, leaf: len(rest) == 0})
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		if filepath.IsAbs(target) {
			v := filepath.VolumeName(target)
			done, target = v+sep, target[len(v):]
		}
		rest = append(names(target), rest...)
	}
	return append(steps, step{path: done, leaf: true}), nil
}

// names splits a path into its names, without empty ones and ".".
func names(path string) []string {
	var out []string
	for _, n := range strings.Split(filepath.ToSlash(path), "/") {
		if n != "" && n != "." {
			out = append(out, n)
		}
	}
	return out
}

// checkChain checks one step and every folder above it; file is the
// error to fill in.
func checkChain(file *Error, s step) error {
	own := filepath.Dir(s.path)
	euid := os.Geteuid()
	for p := s.path; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s %s: %w", cmp.Or(file.What, "plugin binary"), file.Binary, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// A link's mode means nothing and its target is a later step,
			// but its owner may repoint it in a sticky folder.
			if err := checkOwner(file, p, fi, euid, "chown -h root "+p); err != nil {
				return err
			}
		} else if err := checkOne(file, p, fi, s.leaf && (p == s.path || p == own), euid); err != nil {
			return err
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

func checkOwner(file *Error, p string, fi fs.FileInfo, euid int, fix string) error {
	if uid, known := owner(fi); known && uid != 0 && uid != euid {
		return &Error{What: file.What, Binary: file.Binary, Path: p,
			Reason: fmt.Sprintf("is owned by uid %d, neither root nor the user running twofactor (uid %d)", uid, euid),
			Fix:    fix}
	}
	return nil
}

func checkOne(file *Error, p string, fi fs.FileInfo, strict bool, euid int) error {
	if err := checkOwner(file, p, fi, euid, "chown root "+p); err != nil {
		return err
	}
	uid, known := owner(fi)
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	if !strict && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && known && uid == 0 {
		return nil // like /tmp: see the package comment
	}
	return &Error{What: file.What, Binary: file.Binary, Path: p,
		Reason: fmt.Sprintf("is writable by group or others (mode %04o)", perm),
		Fix:    "chmod go-w " + p}
}

// Owner is the uid that owns fi; known is false where files have no Unix
// owner.
func Owner(fi fs.FileInfo) (uid int, known bool) { return owner(fi) }
