package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sweepStale removes, in tmp, the plugin socket directories (socketDirPrefix)
// of hosts that no longer run: this user's own directories whose pid names
// no live process. A live pid keeps its directory, even if the pid is now
// another program's: a directory left over is harmless, one removed under
// a running host would cut it off from its plugin's next connection.
func sweepStale(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), socketDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		fi, err := e.Info()
		st, isStat := fi.Sys().(*syscall.Stat_t)
		if err != nil || !isStat || int(st.Uid) != os.Getuid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive (or not ours to signal: alive too)
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}
