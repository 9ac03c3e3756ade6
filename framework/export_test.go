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

// SetSettleHook makes h run in every settle of an expired push, and in a
// poll of a decided one, once the provider answered and before the
// answer is recorded, until the
// returned function restores it. Tests that call it must not run in
// parallel with others.
func SetSettleHook(h func()) (restore func()) {
	old := testHookSettle
	testHookSettle = h
	return func() { testHookSettle = old }
}
