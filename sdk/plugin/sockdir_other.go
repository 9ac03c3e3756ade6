//go:build !linux

package plugin

// sweepStale is Linux's only: elsewhere a directory left by a host that
// was killed stays (as go-plugin's own socket did).
func sweepStale(string) {}
