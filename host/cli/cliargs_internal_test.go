package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// TestProgressPrinter: rekey prints a line every N rows of a phase, and
// at least every interval while rows go by; the trust tokens are counted
// from 0 again, and each line names what it counts; --progress 0 prints
// nothing.
func TestProgressPrinter(t *testing.T) {
	at := time.Unix(0, 0)
	now := func() time.Time { return at }
	var out bytes.Buffer
	p := progressPrinter(&out, 1000, 5*time.Second, now)
	enr, trust := framework.RekeyEnrollments, framework.RekeyTrustTokens
	steps := []struct {
		advance  time.Duration
		phase    framework.RekeyPhase
		scanned  int
		wantLine string
	}{
		{time.Second, enr, 500, ""},
		{time.Second, enr, 1000, "rekey: 1000 enrollment(s) read, 500 re-encrypted so far\n"}, // 1000 rows since the start
		{time.Second, enr, 1500, ""},
		{5 * time.Second, enr, 1600, "rekey: 1600 enrollment(s) read, 800 re-encrypted so far\n"}, // 5 s since the last line
		{time.Second, enr, 2100, ""},
		{time.Second, enr, 2600, "rekey: 2600 enrollment(s) read, 1300 re-encrypted so far\n"},
		{time.Second, trust, 500, ""}, // counted from 0 again
		{time.Second, trust, 1000, "rekey: 1000 remembered device trust token(s) read, 500 re-encrypted so far\n"},
		{5 * time.Second, trust, 1100, "rekey: 1100 remembered device trust token(s) read, 550 re-encrypted so far\n"},
	}
	for i, s := range steps {
		at = at.Add(s.advance)
		before := out.Len()
		p(s.phase, s.scanned, s.scanned/2)
		if got := out.String()[before:]; got != s.wantLine {
			t.Errorf("step %d (%d rows): printed %q, want %q", i, s.scanned, got, s.wantLine)
		}
	}
	if progressPrinter(&out, 0, time.Second, now) != nil {
		t.Error("--progress 0 should print nothing")
	}
}
