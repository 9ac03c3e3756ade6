//go:build !unix

package sqlite

// writable has no cheap check outside Unix; the write probe in Ping still
// reports a file that cannot be written.
func writable(string) error { return nil }

// roomFor has no portable check; SQLite's SQLITE_FULL still reports a
// full disk on the first write that needs room.
func roomFor(string) error { return nil }
