package duotest

import (
	"math"
	"testing"
)

// TestClearFailures: a lasting outage switched on with Fail(math.MaxInt)
// and off with ClearFailures.
func TestClearFailures(t *testing.T) {
	s, _ := start(t)
	hc := httpClient(t, s)
	ikey, skey := s.Integration()
	check := call{path: "/auth/v2/check", ikey: ikey, skey: skey}
	s.Fail(math.MaxInt, Failure{Status: 500})
	s.Fail(1, Failure{Status: 429}) // queued behind the outage: cleared with it
	for range 3 {
		if resp, body, _ := check.do(t, s, hc); resp.StatusCode != 500 {
			t.Fatalf("during the outage: %s %s", resp.Status, body)
		}
	}
	s.ClearFailures()
	for range 2 {
		if resp, body, _ := check.do(t, s, hc); resp.StatusCode != 200 {
			t.Fatalf("after ClearFailures: %s %s", resp.Status, body)
		}
	}
}
