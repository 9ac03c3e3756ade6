package fastpath

import "net"

func abstractWorks() bool {
	name, err := AbstractName()
	if err != nil {
		return false
	}
	ln, err := net.Listen("unix", name)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
