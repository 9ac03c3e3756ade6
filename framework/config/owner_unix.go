//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// foreignOwner returns the owner's uid of a file owned by someone other
// than root or the user this process runs as, and false for a file either
// of them owns: a secret someone else owns can be rewritten by them.
func foreignOwner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	if st.Uid == 0 || int(st.Uid) == os.Getuid() {
		return 0, false
	}
	return st.Uid, true
}
