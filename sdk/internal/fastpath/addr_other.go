//go:build !linux

package fastpath

// abstractWorks: abstract unix socket names are Linux's.
func abstractWorks() bool { return false }
