package duo

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/syncbuf"
	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

var ctx = context.Background()

// clock is the emulator's clock: real time plus an offset the test moves,
// so that pushes and expiries happen without sleeping.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// env is one emulator plus what a test needs around it.
type env struct {
	t     *testing.T
	emu   *duotest.Server
	clock *clock
	ikey  string
	skey  string
	ca    string // PEM file trusting the emulator
	logs  *syncbuf.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{}
	emu, err := duotest.Start(duotest.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	e := &env{t: t, emu: emu, clock: clk, logs: &syncbuf.Buffer{}}
	e.ikey, e.skey = emu.Integration()
	e.ca = writeCA(t, emu.Certificate().Raw)
	t.Cleanup(func() {
		// No log line, ever, contains a secret key.
		if strings.Contains(e.logs.String(), e.skey) {
			t.Errorf("the logs contain the secret key")
		}
	})
	return e
}

func writeCA(t *testing.T, der ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	for _, d := range der {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// settings are working settings for the emulator, changed by extra (an
// empty value deletes a setting).
func (e *env) settings(extra sdk.Settings) sdk.Settings {
	s := sdk.Settings{
		"integration_key":   e.ikey,
		"secret_key":        e.skey,
		"api_hostname":      e.emu.Host(),
		"allow_custom_host": "true",
		"ca_file":           e.ca,
	}
	for k, v := range extra {
		if v == "" {
			delete(s, k)
		} else {
			s[k] = v
		}
	}
	return s
}

func (e *env) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Trace})
}

// provider returns a configured provider (not yet activated).
func (e *env) provider(extra sdk.Settings, opts ...Option) *Provider {
	e.t.Helper()
	p := New(append([]Option{WithLogger(e.logger())}, opts...)...)
	if err := p.Configure(ctx, e.settings(extra)); err != nil {
		e.t.Fatalf("Configure: %v", err)
	}
	return p
}

// activated returns a configured and activated provider.
func (e *env) activated(extra sdk.Settings, opts ...Option) *Provider {
	e.t.Helper()
	p := e.provider(extra, opts...)
	if _, err := p.Activate(ctx); err != nil {
		e.t.Fatalf("Activate: %v", err)
	}
	return p
}

// setupPasscode is the passcode the tests' setups of a user Duo knows
// are confirmed with: one no test uses otherwise, valid once.
const setupPasscode = "8675309"

// enrolled returns the state of a user Duo already knows (with a device):
// begin asks for a passcode, and one Duo accepts for the user confirms it.
func (e *env) enrolled(p *Provider, username string) []byte {
	e.t.Helper()
	e.emu.AddUser(username)
	u := sdk.User{ID: username}
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollBegin})
	if err != nil || begin.Done {
		e.t.Fatalf("Enroll(%s) begin = %+v, %v; want not done, asking for a passcode", username, begin, err)
	}
	e.emu.AddPasscode(username, setupPasscode)
	res, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollFinish, State: begin.State, Code: setupPasscode})
	if err != nil || !res.Done {
		e.t.Fatalf("Enroll(%s) finish with a passcode = %+v, %v", username, res, err)
	}
	return res.State
}

// lastRequest returns the emulator's last request to path.
func (e *env) lastRequest(path string) duotest.Request {
	e.t.Helper()
	reqs := e.emu.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i]
		}
	}
	e.t.Fatalf("no request to %s", path)
	return duotest.Request{}
}

// wantKind fails unless err is an *sdk.Error of the given kind and field.
func wantKind(t *testing.T, err error, kind sdk.Kind, field string) *sdk.Error {
	t.Helper()
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *sdk.Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || e.Field != field {
		t.Fatalf("error = %v, want kind %s field %q", err, kind, field)
	}
	return e
}

// wantOutcome fails unless r has the outcome and reason.
func wantOutcome(t *testing.T, r sdk.VerifyResponse, err error, o sdk.Outcome, reason sdk.Reason) {
	t.Helper()
	if err != nil {
		t.Fatalf("Verify error: %v", err)
	}
	if r.Outcome != o || r.Reason != reason {
		t.Fatalf("Verify = %+v, want %s/%q", r, o, reason)
	}
}
