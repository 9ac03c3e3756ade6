//go:build unix

package binperm

import (
	"io/fs"
	"syscall"
)

// Enforced: Unix owners and modes are what Check reads.
const Enforced = true

func owner(fi fs.FileInfo) (uid int, known bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
