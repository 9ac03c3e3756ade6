package framework

import "time"

// SetDecisionTimeout shortens decisionTimeout for a test, until the
// returned function restores it. Tests that call it must not run in
// parallel with others.
func SetDecisionTimeout(d time.Duration) (restore func()) {
	old := decisionTimeout
	decisionTimeout = d
	return func() { decisionTimeout = old }
}
