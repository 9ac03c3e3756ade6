package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// TestGateReadBurst: 32 logins at once, each user's own, round after
// round, on the gate's read (rawQueryRow, on the pool's driver
// connections) and the decision writer: every read sees its own user's
// enrollment as the previous round committed it, never another user's
// (a buffer shared between reads) nor an older version (a read left open
// on a connection, whose snapshot would stay behind the writer's).
func TestGateReadBurst(t *testing.T) {
	s := openTemp(t)
	defer closeStore(t, s)
	ctx := t.Context()
	const users, rounds = 32, 10
	now := time.Now().UTC()
	var batch []framework.Enrollment
	for u := range users {
		batch = append(batch, framework.Enrollment{UserID: fmt.Sprintf("user%02d", u), Provider: "totp", Status: framework.StatusActive,
			State: []byte(fmt.Sprintf("user%02d round 0", u)), Version: 1, CreatedAt: now, UpdatedAt: now, ConfirmedAt: now})
	}
	if err := s.InsertEnrollments(ctx, batch); err != nil {
		t.Fatal(err)
	}
	never := func(int) time.Time { return time.Time{} }
	errs := burst.Run(users, func(u int) error {
		user := fmt.Sprintf("user%02d", u)
		first := int64(0) // the row's first version (framework.FirstVersion)
		for round := range rounds {
			r, ok, e, err := s.ReserveAttemptFor(ctx, user, framework.BudgetFactor, "totp", now, never)
			if err != nil || !ok || e == nil {
				return fmt.Errorf("%s round %d: %v, %v, %+v", user, round, ok, err, e)
			}
			if round == 0 {
				first = e.Version
			}
			want := fmt.Sprintf("%s round %d", user, round)
			if e.UserID != user || string(e.State) != want || e.Version != first+int64(round) || !e.ConfirmedAt.Equal(now) {
				return fmt.Errorf("%s round %d read %q version %d, confirmed %v; want %q version %d", user, round, e.State, e.Version, e.ConfirmedAt, want, first+int64(round))
			}
			e.State = fmt.Appendf(nil, "%s round %d", user, round+1)
			d := framework.DecisionWrite{Update: e, Settled: &framework.Refund{UserID: user, Budget: framework.BudgetFactor, Reservation: r}}
			if err := s.CommitDecision(ctx, d); err != nil {
				return fmt.Errorf("%s round %d: commit: %w", user, round, err)
			}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// TestGateReadFailsClosed: a gate read that cannot be made fails, with the
// cause, and holds no reservation.
func TestGateReadFailsClosed(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		// fault breaks the store, or the context, before the read.
		fault func(t *testing.T, s *Store, path string) context.Context
		want  error
	}{
		{"context ended", func(*testing.T, *Store, string) context.Context { return cancelled }, context.Canceled},
		{"database file deleted", func(t *testing.T, s *Store, path string) context.Context {
			if err := os.Rename(path, path+".aside"); err != nil {
				t.Fatal(err)
			}
			// The write notices (see TestDeletedFileRefusesAtOnce).
			if _, err := s.PutPending(t.Context(), pendingEnrollment("bob", "totp", "seed")); !errors.Is(err, framework.ErrStoreUnavailable) {
				t.Fatalf("write after the file was deleted: %v", err)
			}
			return t.Context()
		}, framework.ErrStoreUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "twofactor.db")
			s := mustOpen(t, path)
			defer closeStore(t, s)
			if _, err := s.PutPending(t.Context(), pendingEnrollment("alice", "totp", "seed")); err != nil {
				t.Fatal(err)
			}
			ctx := tc.fault(t, s, path)
			_, ok, e, err := s.ReserveAttemptFor(ctx, "alice", framework.BudgetFactor, "totp", ledgerNow, lockAt(3))
			if !errors.Is(err, tc.want) || ok || e != nil {
				t.Fatalf("read: %v, %+v, %v; want %v", ok, e, err, tc.want)
			}
			if held := s.ledger.heldBy("alice"); len(held) != 0 {
				t.Errorf("a failed read holds %d reservations", len(held))
			}
		})
	}
}

// TestGateRow: the gate's row as the driver gives it, read into the
// budget and the enrollment; a value of a type its column cannot hold
// fails the read instead of reading as zero.
func TestGateRow(t *testing.T) {
	created, updated, confirmed := time.Unix(1, 0).UTC(), time.Unix(2, 0).UTC(), time.Unix(3, 0).UTC()
	full := [8]driver.Value{int64(2), int64(4e9), "active", []byte("state"), int64(7), created.UnixNano(), updated.UnixNano(), confirmed.UnixNano()}
	with := func(i int, v driver.Value) [8]driver.Value { r := full; r[i] = v; return r }
	enrollment := framework.Enrollment{UserID: "alice", Provider: "totp", Status: framework.StatusActive, State: []byte("state"),
		Version: 7, CreatedAt: created, UpdatedAt: updated, ConfirmedAt: confirmed}
	pending := enrollment
	pending.ConfirmedAt = time.Time{}
	for _, tc := range []struct {
		name    string
		row     [8]driver.Value
		want    framework.Attempts
		wantE   *framework.Enrollment
		wantErr bool
	}{
		{"no budget, no enrollment", [8]driver.Value{}, framework.Attempts{}, nil, false},
		{"budget and enrollment", full, framework.Attempts{Failures: 2, LockedUntil: time.Unix(4, 0).UTC()}, &enrollment, false},
		{"not confirmed", with(7, nil), framework.Attempts{Failures: 2, LockedUntil: time.Unix(4, 0).UTC()}, &pending, false},
		{"failures not an integer", with(0, "2"), framework.Attempts{}, nil, true},
		{"version not an integer", with(4, 7.0), framework.Attempts{}, nil, true},
		{"status not text", with(2, []byte("active")), framework.Attempts{}, nil, true},
		{"state not a blob", with(3, "state"), framework.Attempts{}, nil, true},
		{"confirmed_at not an integer", with(7, "now"), framework.Attempts{}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, e, err := gateRow("alice", "totp", tc.row)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(a, tc.want) || !reflect.DeepEqual(e, tc.wantE) {
				t.Errorf("read %+v, %+v; want %+v, %+v", a, e, tc.want, tc.wantE)
			}
		})
	}
}
