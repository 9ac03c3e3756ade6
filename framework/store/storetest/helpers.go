package storetest

// Builders and assertions the shared tests use.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

func at(d time.Duration) time.Time { return base.Add(d) }

// newPending is what the framework passes to PutPending.
func newPending(user, provider string, state []byte) framework.Enrollment {
	return framework.Enrollment{
		UserID:    user,
		Provider:  provider,
		State:     state,
		CreatedAt: base,
		UpdatedAt: base,
	}
}

// stored is what a store must hold after a PutPending of e at version v.
func stored(e framework.Enrollment, v int64) framework.Enrollment {
	e.Status = framework.StatusPending
	e.Version = v
	e.ConfirmedAt = time.Time{}
	return e
}

// activated is e confirmed at c, as the framework passes it to Update.
func activated(e framework.Enrollment, state []byte, c time.Time) framework.Enrollment {
	e.Status = framework.StatusActive
	e.State = state
	e.UpdatedAt = c
	e.ConfirmedAt = c
	return e
}

func mustPut(t *testing.T, s framework.Store, e framework.Enrollment) framework.Enrollment {
	t.Helper()
	got, err := s.PutPending(t.Context(), e)
	if err != nil {
		t.Fatalf("PutPending(%q, %q): %v", e.UserID, e.Provider, err)
	}
	return got
}

func mustUpdate(t *testing.T, s framework.Store, e framework.Enrollment) framework.Enrollment {
	t.Helper()
	got, err := s.Update(t.Context(), e)
	if err != nil {
		t.Fatalf("Update(%q, %q, version %d): %v", e.UserID, e.Provider, e.Version, err)
	}
	return got
}

func mustGet(t *testing.T, s framework.Store, user, provider string) framework.Enrollment {
	t.Helper()
	got, err := s.Get(t.Context(), user, provider)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", user, provider, err)
	}
	return got
}

func mustList(t *testing.T, s framework.Store, user string) []framework.Enrollment {
	t.Helper()
	got, err := s.List(t.Context(), user)
	if err != nil {
		t.Fatalf("List(%q): %v", user, err)
	}
	return got
}

// active stores a pending enrollment and confirms it.
func active(t *testing.T, s framework.Store, user, provider string) framework.Enrollment {
	t.Helper()
	p := mustPut(t, s, newPending(user, provider, []byte("pending-"+provider)))
	return mustUpdate(t, s, activated(p, []byte("active-"+provider), at(time.Minute)))
}

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", op, err, want)
	}
}

// check compares every field. Times must be in UTC and within a microsecond
// of what was written, the finest resolution every backend keeps.
func check(t *testing.T, what string, got, want framework.Enrollment) {
	t.Helper()
	var diffs []string
	add := func(field string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
	if got.UserID != want.UserID {
		add("UserID", fmt.Sprintf("%q", got.UserID), fmt.Sprintf("%q", want.UserID))
	}
	if got.Provider != want.Provider {
		add("Provider", fmt.Sprintf("%q", got.Provider), fmt.Sprintf("%q", want.Provider))
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if !bytes.Equal(got.State, want.State) {
		add("State", fmt.Sprintf("%x (%d bytes)", got.State, len(got.State)), fmt.Sprintf("%x (%d bytes)", want.State, len(want.State)))
	}
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	if got.SignInCode != want.SignInCode {
		add("SignInCode", fmt.Sprintf("%+v", got.SignInCode), fmt.Sprintf("%+v", want.SignInCode))
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ConfirmedAt", got.ConfirmedAt, want.ConfirmedAt},
	} {
		if msg := timeDiff(f.got, f.want); msg != "" {
			add(f.name, f.got.Format(time.RFC3339Nano), f.want.Format(time.RFC3339Nano)+" ("+msg+")")
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s: %s", what, strings.Join(diffs, "; "))
	}
}

func timeDiff(got, want time.Time) string {
	switch {
	case want.IsZero() != got.IsZero():
		return "zero mismatch"
	case want.IsZero():
		return ""
	case got.Location() != time.UTC:
		return "not UTC"
	}
	if d := got.Sub(want).Abs(); d >= time.Microsecond {
		return fmt.Sprintf("off by %v", d)
	}
	return ""
}

// firstVersion checks v as a new row's version (framework.FirstVersion:
// random, at least 1), and returns it.
func firstVersion(t *testing.T, v int64) int64 {
	t.Helper()
	if v < 1 || v > 1+1<<62 {
		t.Errorf("a new row's version %d, want one of framework.FirstVersion's", v)
	}
	return v
}
