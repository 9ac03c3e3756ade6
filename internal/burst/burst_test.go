package burst

import (
	"sync"
	"testing"
)

// TestRunAtOnce: all n calls are in progress at the same time (each waits
// for every other to have begun, which calls run one after another, or a
// few at a time, would never finish), and the results come back in the
// order of i.
func TestRunAtOnce(t *testing.T) {
	const n = 64
	var begun sync.WaitGroup
	begun.Add(n)
	got := Run(n, func(i int) int {
		begun.Done()
		begun.Wait()
		return i * i
	})
	for i, v := range got {
		if v != i*i {
			t.Fatalf("result %d is %d, want %d", i, v, i*i)
		}
	}
	if c := Count(n, func(i int) bool { return i%4 == 0 }); c[true] != n/4 || c[false] != n-n/4 {
		t.Fatalf("Count: %v, want %d true and %d false", c, n/4, n-n/4)
	}
}
