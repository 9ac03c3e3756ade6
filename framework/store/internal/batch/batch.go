// Package batch checks a batch of enrollments for a store's bulk path
// (framework.BulkEnrollmentWriter) before a store converts it to its own
// dialect: what makes a batch wrong does not depend on the database.
package batch

import (
	"fmt"

	"github.com/twofactor/twofactor/framework"
)

// Check refuses a batch with a user and provider twice, as a
// *framework.ExistsError with InBatch, or with an enrollment whose status
// is neither pending nor active. A store calls it before writing
// anything, so a duplicate inside the batch is reported as that, not as a
// clash with a stored row.
func Check(b []framework.Enrollment) error {
	type key struct{ user, provider string }
	seen := make(map[key]struct{}, len(b))
	for i, e := range b {
		k := key{e.UserID, e.Provider}
		if _, dup := seen[k]; dup {
			return &framework.ExistsError{UserID: e.UserID, Provider: e.Provider, InBatch: true}
		}
		seen[k] = struct{}{}
		if e.Status != framework.StatusPending && e.Status != framework.StatusActive {
			return fmt.Errorf("enrollment %d: invalid status %q", i, e.Status)
		}
	}
	return nil
}

// InOrder returns the users of users that are in found, in users' order:
// what ExistingEnrollments answers, whatever order the database found
// them in.
func InOrder(users []string, found map[string]struct{}) []string {
	out := []string{}
	for _, u := range users {
		if _, ok := found[u]; ok {
			out = append(out, u)
		}
	}
	return out
}
