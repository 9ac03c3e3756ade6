// Package pgtest gives tests a PostgreSQL server of their own: a fresh
// schema in the database TEST_POSTGRES_DSN names, dropped when the test
// ends, and a proxy in front of the server that can freeze like a server
// that stopped answering. A test without TEST_POSTGRES_DSN is skipped,
// saying how to run it, so that go test ./... passes without a server.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSNEnv names the server the tests run against. It is deliberately not
// TWOFACTOR_...: that prefix is the host's configuration, and a test
// variable there could end up read as a setting.
const DSNEnv = "TEST_POSTGRES_DSN"

// DSN returns the server's DSN, or skips the test if none is set.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skip("set " + DSNEnv + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	return dsn
}

// Schema creates an empty schema, dropped with everything in it when the
// test ends, and returns a DSN whose search_path is that schema. Each
// test thus gets a store of its own in the one test database, and tests
// can run in parallel and be rerun without cleaning up by hand.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", DSNEnv, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithParam(t, dsn, "search_path", schema)
}

// WithParam adds a run-time parameter to dsn, in whichever of pgx's two
// DSN forms it is written.
func WithParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s is not a valid URL: %v", DSNEnv, err)
		}
		q := u.Query()
		q.Set(key, value)
		// pgx reads a query's "+" as itself, not as a space (Encode's
		// spelling of one): options=-c statement_timeout=... needs %20.
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		return u.String()
	}
	return dsn + " " + key + "=" + value // the values here need no quoting
}

// Freezer is a TCP proxy in front of the test's server that can stand
// for a server that stops answering (hung, its disk stalled, the network
// cut without a reset): while frozen, whatever either side sends is
// dropped and its connection is closed once thawed, so nothing sent
// during the freeze ever reaches the server late.
type Freezer struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thawed chan struct{}
}

// NewFreezer starts a proxy on 127.0.0.1 to target (host:port), thawed
// and closed when the test ends.
func NewFreezer(t testing.TB, target string) *Freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Freezer{ln: ln, target: target, thawed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); f.Thaw() })
	go f.serve()
	return f
}

// Addr is the proxy's host:port, to put in a DSN instead of the server's.
func (f *Freezer) Addr() string { return f.ln.Addr().String() }

func (f *Freezer) serve() {
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
func (f *Freezer) pipe(dst, src net.Conn) {
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

// Freeze drops everything either side sends from now on.
func (f *Freezer) Freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

// Thaw ends a freeze: the connections that saw it are closed, new ones
// pass again.
func (f *Freezer) Thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thawed)
		f.thawed = make(chan struct{})
	}
}
