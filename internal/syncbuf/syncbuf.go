// Package syncbuf provides the log sink tests hand to loggers whose lines
// come from several goroutines at once (hclog, a plugin's log-copying
// goroutine, an HTTP server's handlers), so the test can read what was
// logged without a data race.
//
// The sdk module keeps a copy of its own (sdk/plugin's tests): it imports
// nothing of this module.
package syncbuf

import (
	"strings"
	"sync"
)

// Buffer is an io.Writer safe for concurrent writes and reads. The zero
// value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset discards everything written so far.
func (s *Buffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
