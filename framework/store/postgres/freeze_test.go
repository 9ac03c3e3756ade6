package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
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

// TestPipelinedBatchOnHungServer: a server that stops answering while a
// login's decision is sent. The decision fails closed, ErrStoreUnavailable
// and nothing written, within the statement_timeout the DSN configures
// plus the margin the store gives the server to report it (batchWait), not
// a fixed bound of its own; and once the server answers again the next
// decision commits.
func TestPipelinedBatchOnHungServer(t *testing.T) {
	const configured = time.Second
	u, err := url.Parse(newSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	s := mustOpen(t, withParam(t, u.String(), "statement_timeout", "1000"))
	defer closeStore(t, s)
	ctx := t.Context()
	e, err := s.PutPending(ctx, pendingEnrollment("alice", "totp", "seed"))
	if err != nil {
		t.Fatal(err)
	}
	decision := func() framework.DecisionWrite {
		u := e
		u.State = []byte("used")
		return framework.DecisionWrite{Update: &u, ResetUser: "alice",
			Audit: []framework.AuditEntry{{Time: reserveNow, Event: framework.EventVerify, UserID: "alice", Provider: "totp", Outcome: "allow"}}}
	}

	f.freeze()
	start := time.Now()
	err = s.CommitDecision(ctx, decision())
	took := time.Since(start)
	if !errors.Is(err, framework.ErrStoreUnavailable) {
		t.Fatalf("a decision on a hung server: %v, want ErrStoreUnavailable", err)
	}
	if bound := configured + answerMargin + time.Second; took > bound {
		t.Fatalf("a decision on a hung server failed after %v; the configured statement_timeout %v allows %v", took, configured, bound)
	}
	t.Logf("failed after %v", took.Round(time.Millisecond))

	f.thaw()
	got, err := s.Get(context.Background(), "alice", "totp")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != e.Version || string(got.State) != "seed" {
		t.Fatalf("after the failed decision: v%d %q, want v%d \"seed\"", got.Version, got.State, e.Version)
	}
	if err := s.CommitDecision(ctx, decision()); err != nil {
		t.Fatalf("the decision once the server answers: %v", err)
	}
	if got, _ := s.Get(ctx, "alice", "totp"); got.Version != e.Version+1 {
		t.Fatalf("after the decision: v%d, want v%d", got.Version, e.Version+1)
	}
}
