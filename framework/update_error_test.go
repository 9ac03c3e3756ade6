package framework_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// failingUpdate is a store whose enrollment updates fail with err: an
// activation is a decision's update (CommitDecision, with the first
// recovery codes).
type failingUpdate struct {
	framework.Store
	err error
}

func (s failingUpdate) Update(context.Context, framework.Enrollment) (framework.Enrollment, error) {
	return framework.Enrollment{}, s.err
}

func (s failingUpdate) CommitDecision(ctx context.Context, d framework.DecisionWrite) error {
	if d.Update != nil {
		return s.err
	}
	return s.Store.CommitDecision(ctx, d)
}

// TestEnrollUpdateErrors: an enrollment whose activation cannot be stored
// answers what went wrong: a concurrent change is a conflict (try again),
// the store's outage store_unavailable, anything else internal, never a
// conflict that would send the client round again for a fault that stays.
// Nothing is active afterwards.
func TestEnrollUpdateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want framework.Code
	}{
		{"conflict", framework.ErrConflict, framework.CodeConflict},
		{"store down", framework.StoreUnavailable(errors.New("disk I/O error")), framework.CodeStoreUnavailable},
		{"other", errors.New("constraint failed"), framework.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := openStore(t)
			fw := startFramework(t, failingUpdate{store, tc.err}, newKey(t), newClock(), 0,
				framework.ProviderSpec{Name: "push", Staff: true, Impl: &pushProvider{}})
			_, err := fw.BeginEnrollment(t.Context(), framework.EnrollInput{UserID: "alice", Provider: "push", Audience: framework.AudienceStaff})
			if got := framework.CodeOf(err); got != tc.want {
				t.Fatalf("BeginEnrollment: %v (%s), want %s", err, got, tc.want)
			}
			e, err := store.Get(t.Context(), "alice", "push")
			if err == nil && e.Status == framework.StatusActive {
				t.Errorf("the enrollment is active after a failed update")
			}
		})
	}
}
