package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// freezer is a TCP proxy in front of the test's server that can stand for
// a server that stops answering (hung, its disk stalled, the network cut
// without a reset): while frozen, whatever either side sends is dropped
// and its connection is closed once thawed, so nothing sent during the
// freeze ever reaches the server late.
type freezer struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thawed chan struct{}
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thawed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); f.thaw() })
	go f.serve()
	return f
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		go f.pipe(s, c)
		go f.pipe(c, s)
	}
}

// pipe copies src to dst until either fails; bytes read while frozen are
// dropped, and the pair closed when thawed.
func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			frozen, thawed := f.frozen, f.thawed
			f.mu.Unlock()
			if frozen {
				<-thawed
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thawed)
		f.thawed = make(chan struct{})
	}
}

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
			u, err := url.Parse(newSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			f := newFreezer(t, u.Host)
			u.Host = f.ln.Addr().String()
			s := mustOpen(t, withParam(t, u.String(), "statement_timeout", "1.5s"))
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

			f.freeze()
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

			f.thaw()
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
