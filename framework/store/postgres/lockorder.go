package postgres

import (
	"slices"
	"strings"
)

// updateStep is one enrollment statement of a batch: the update of
// batch[i], or, with lock, the lock of batch[i].lockUser's enrollments.
type updateStep struct {
	i    int
	lock bool
}

// updateSteps are the batch's enrollment statements in the one global
// lock order: each update at its key (user, provider), and each user's
// lock (once a batch) at (user, ""), before any row of that user, taken
// in the same provider order. Every batch takes rows in that order, so
// two replicas' batches never wait on each other in a cycle.
func updateSteps(batch []decisionArgs) []updateStep {
	type keyed struct {
		key string
		st  updateStep
	}
	var ks []keyed
	locked := map[string]bool{}
	for i, d := range batch {
		if d.key == "" {
			continue
		}
		ks = append(ks, keyed{d.key, updateStep{i: i}})
		if d.lockUser != "" && !locked[d.lockUser] {
			locked[d.lockUser] = true
			ks = append(ks, keyed{d.lockUser + "\x00", updateStep{i: i, lock: true}})
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([]updateStep, len(ks))
	for n, k := range ks {
		out[n] = k.st
	}
	return out
}
