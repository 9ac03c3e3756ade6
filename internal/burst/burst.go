// Package burst is the tests' one way to send "N simultaneous requests":
// every limit, replay rule and state change of twofactor is tested with a
// burst, and a burst whose calls start one after another tests nothing.
package burst

import "sync"

// Run calls fn(i) for i in [0, n), each in a goroutine of its own, and
// returns the results in the order of i. No call starts before every
// goroutine is running and waiting at one barrier: they are released
// together, so the calls meet the code under test at the same moment
// rather than in the order they were started.
func Run[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	for i := range n {
		done.Go(func() {
			ready.Done()
			<-start
			out[i] = fn(i)
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}

// Run2 is Run for a call with two results, such as a value and an
// error: both in the order of i.
func Run2[A, B any](n int, fn func(i int) (A, B)) ([]A, []B) {
	type pair struct {
		a A
		b B
	}
	ps := Run(n, func(i int) pair {
		a, b := fn(i)
		return pair{a, b}
	})
	as, bs := make([]A, n), make([]B, n)
	for i, p := range ps {
		as[i], bs[i] = p.a, p.b
	}
	return as, bs
}

// Count is Run with the results counted: how many calls gave each.
func Count[K comparable](n int, fn func(i int) K) map[K]int {
	counts := map[K]int{}
	for _, k := range Run(n, fn) {
		counts[k]++
	}
	return counts
}
