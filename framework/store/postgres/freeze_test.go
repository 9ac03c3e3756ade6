package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/pgtest"
)

// TestHungServer: a server that stops answering while logins reserve
// their attempts (a burst of them, each one a login waiting) or while a
// login's decision is sent. Each call fails closed, ErrStoreUnavailable
// and nothing written, within the statement_timeout the DSN configures
// (a fractional one: 1.5s) plus the margin the store gives the server to
// report it (serverWait) — twice that for a decision queued behind a
// batch in flight — and not the 30 s a decision's deadline would allow; once the server answers again the same calls succeed, each
// counted or written once.
func TestHungServer(t *testing.T) {
	const configured = 1500 * time.Millisecond
	const users = 8
	type call func(ctx context.Context, s *Store, e framework.Enrollment) error
	reserve := func(ctx context.Context, s *Store, e framework.Enrollment) error {
		_, ok, got, err := s.ReserveAttemptFor(ctx, e.UserID, framework.BudgetFactor, "totp", reserveNow, lockAt(5))
		if err == nil && (!ok || got == nil || got.Version != e.Version) {
			err = fmt.Errorf("reservation: ok %v, enrollment %+v", ok, got)
		}
		return err
	}
	decide := func(ctx context.Context, s *Store, e framework.Enrollment) error {
		u := e
		u.State = []byte("used")
		return s.CommitDecision(ctx, framework.DecisionWrite{Update: &u,
			Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: e.UserID, Provider: "totp", Outcome: "allow"}}})
	}
	for _, tc := range []struct {
		name string
		call call
		// waits is how many bounded waits a call may take: a decision
		// that arrives while a batch is in flight waits for that batch to
		// fail, then for its own (group commit).
		waits int
		// written checks what the calls that succeeded wrote, once each.
		written func(t *testing.T, s *Store, e framework.Enrollment, want int)
	}{
		{"reservations", reserve, 1, func(t *testing.T, s *Store, e framework.Enrollment, want int) {
			if a, err := s.Attempts(context.Background(), e.UserID, framework.BudgetFactor); err != nil || a.Failures != want {
				t.Errorf("%s's budget: %+v, %v; want %d counted", e.UserID, a, err, want)
			}
		}},
		{"decisions", decide, 2, func(t *testing.T, s *Store, e framework.Enrollment, want int) {
			got, err := s.Get(context.Background(), e.UserID, "totp")
			if err != nil || got.Version != e.Version+int64(want) {
				t.Errorf("%s: v%d, %v; want v%d", e.UserID, got.Version, err, e.Version+int64(want))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(pgtest.Schema(t))
			if err != nil {
				t.Fatal(err)
			}
			f := pgtest.NewFreezer(t, u.Host)
			u.Host = f.Addr()
			s := mustOpen(t, pgtest.WithParam(t, u.String(), "statement_timeout", "1.5s"))
			defer closeStore(t, s)
			var stored []framework.Enrollment
			for i := range users {
				e, err := s.PutPending(t.Context(), pendingEnrollment(fmt.Sprintf("user%d", i), "totp", "seed"))
				if err != nil {
					t.Fatal(err)
				}
				stored = append(stored, e)
			}
			all := func() ([]time.Duration, []error) {
				// The logins' deadline, as the framework gives a decision
				// (decisionTimeout): the store's bound must end them first.
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				return burst.Run2(users, func(i int) (time.Duration, error) {
					began := time.Now()
					err := tc.call(ctx, s, stored[i])
					return time.Since(began), err
				})
			}

			f.Freeze()
			took, errs := all()
			bound := time.Duration(tc.waits)*(configured+answerMargin) + time.Second
			for i, err := range errs {
				if !errors.Is(err, framework.ErrStoreUnavailable) {
					t.Errorf("call %d on a hung server: %v, want ErrStoreUnavailable", i, err)
				}
				if took[i] > bound {
					t.Errorf("call %d on a hung server failed after %v; the configured statement_timeout %v allows %v", i, took[i], configured, bound)
				}
			}
			t.Logf("failed after %v (slowest)", slowest(took).Round(time.Millisecond))

			f.Thaw()
			for _, e := range stored {
				tc.written(t, s, e, 0)
			}
			_, errs = all()
			for i, err := range errs {
				if err != nil {
					t.Errorf("call %d once the server answers: %v", i, err)
				}
			}
			for _, e := range stored {
				tc.written(t, s, e, 1)
			}
		})
	}
}
