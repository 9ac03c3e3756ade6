package framework_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/postgres"
)

// freezer is a TCP proxy that, once frozen, drops whatever either
// side sends: a PostgreSQL server that stopped answering (hung, a cut
// network without a reset). As the postgres package's freezer (freeze_test.go).
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thawed chan struct{}
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thawed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); f.thaw() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go f.pipe(s, c)
			go f.pipe(c, s)
		}
	}()
	return f
}

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

func (f *freezer) freeze() { f.mu.Lock(); f.frozen = true; f.mu.Unlock() }

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thawed)
		f.thawed = make(chan struct{})
	}
}

// TestChallengeOnHungPostgres: the login's first call, Challenge, and a
// push's poll on a PostgreSQL server that stopped answering, with a
// caller's context that has no deadline (the host passes the HTTP
// request's, which has none; an embedder may pass context.Background()).
// They used to wait as long as the TCP connection lived; now they answer
// store_unavailable (503) at the decision's deadline, shortened here from
// 30 s.
func TestChallengeOnHungPostgres(t *testing.T) {
	const bound = time.Second
	defer framework.SetDecisionTimeout(bound)()
	u, err := url.Parse(postgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	s, err := postgres.Create(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fw := startFramework(t, s, newKey(t), newClock(), 0, inProcess())

	f.freeze()
	defer f.thaw()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Challenge", func() error {
			_, err := fw.Challenge(context.Background(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceStaff})
			return err
		}},
		{"PollVerification", func() error {
			_, err := fw.PollVerification(context.Background(), "alice", "txid")
			return err
		}},
	} {
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- c.call() }()
		// The bound, then pgx's cancel of the statement (a cancel request
		// the frozen server does not answer either, then the connection's
		// deadline): well under the store's own bound (serverWait, 15 s).
		const waitFor = 10 * time.Second
		select {
		case err := <-done:
			if framework.CodeOf(err) != framework.CodeStoreUnavailable {
				t.Errorf("%s on a hung server: %v (%s) after %v, want store_unavailable", c.name, err, framework.CodeOf(err), time.Since(began))
			}
		case <-time.After(waitFor):
			t.Errorf("%s on a hung server has not answered after %v (the decision's deadline is %v)", c.name, waitFor, bound)
			f.thaw()
			<-done
		}
	}
}
