package host_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/syncbuf"
)

// TestErrorLineSurvivesHostKill: under load the host holds its info lines
// for a window before writing them (host.LogBuffer), but an error is
// written at once. A real `twofactor serve` with requests logging at info
// all the while (so a window is always open) meets a plugin breaking the
// reason rule, which the host logs as an error before it answers; the
// host is SIGKILLed as soon as the answer arrives, and the error line is
// in what it wrote. (Held in the window, it went with the process.)
func TestErrorLineSurvivesHostKill(t *testing.T) {
	cfg := writeConfig(t, ruleBreakerPlugins(t), ruleBreakerProviders)
	var written syncbuf.Buffer // every line the host writes, until its end
	cmd, base, drained := startProcessOut(t, cfg, nil, nil, &written)
	h := &testHost{t: t, url: base, clock: &clock{}} // the process, through the harness's API calls
	h.enrollRuleBreaker("ann")

	// Info lines all the while: each admin request is logged at info.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", base+"/v1/providers", nil)
			req.Header.Set("Authorization", "Bearer "+adminKey)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	// Two lines written: the first opens a window, the second is held
	// until it ends; from then on the traffic keeps a window open.
	seen := func() int { return strings.Count(written.String(), "path=/v1/providers") }
	for before, deadline := seen(), time.Now().Add(10*time.Second); seen() < before+2; runtime.Gosched() {
		select {
		case <-drained:
			t.Fatalf("host exited:\n%s", written.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request lines logged:\n%s", tail(written.String(), 20))
		}
	}

	// 444444 makes the plugin answer a reason outside the vocabulary.
	if r := h.verifyRuleBreaker("ann", "444444"); r.str("reason") != "invalid_reason" {
		t.Fatalf("verify: %d %v", r.status, r.body)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-drained
	if !strings.Contains(written.String(), "provider broke the reason rule") {
		t.Fatalf("the error logged before the answer is not in what the killed host wrote:\n%s", tail(written.String(), 20))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
