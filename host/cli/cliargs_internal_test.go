package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressPrinter: rekey prints a line every N rows, and at least
// every interval while rows go by; --progress 0 prints nothing.
func TestProgressPrinter(t *testing.T) {
	at := time.Unix(0, 0)
	now := func() time.Time { return at }
	var out bytes.Buffer
	p := progressPrinter(&out, 1000, 5*time.Second, now)
	steps := []struct {
		advance  time.Duration
		scanned  int
		wantLine bool
	}{
		{time.Second, 500, false},
		{time.Second, 1000, true}, // 1000 rows since the start
		{time.Second, 1500, false},
		{5 * time.Second, 1600, true}, // 5 s since the last line
		{time.Second, 2100, false},
		{time.Second, 2600, true},
	}
	for i, s := range steps {
		at = at.Add(s.advance)
		before := out.Len()
		p(s.scanned, s.scanned/2)
		if got := out.Len() > before; got != s.wantLine {
			t.Errorf("step %d (%d rows): printed %v, want %v; output:\n%s", i, s.scanned, got, s.wantLine, out.String())
		}
	}
	if !strings.Contains(out.String(), "rekey: 1600 row(s) read, 800 re-encrypted so far\n") {
		t.Errorf("output:\n%s", out.String())
	}
	if progressPrinter(&out, 0, time.Second, now) != nil {
		t.Error("--progress 0 should print nothing")
	}
}
