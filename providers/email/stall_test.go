package email_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/sdk"
)

// stallingServer is a clear-text SMTP server on 127.0.0.1 that greets
// and answers EHLO, then never answers MAIL FROM: a tarpit. stalled is
// closed once the client has sent MAIL FROM.
func stallingServer(t *testing.T) (port int, stalled <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { conn.Close() })
		r := bufio.NewReader(conn)
		_, _ = conn.Write([]byte("220 localhost ESMTP tarpit\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				_, _ = conn.Write([]byte("250 localhost\r\n"))
			case strings.HasPrefix(cmd, "MAIL"):
				close(ch) // and never answer
			default:
				_, _ = conn.Write([]byte("502 not here\r\n"))
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

// TestSendEndsWithContext: the SMTP session ends when the caller's context
// does, at every step, not only while connecting (the provider's promise:
// no SMTP step outlives the host's wait). A server that stops answering
// after EHLO must not hold a send for go-smtp's own five-minute command
// timeout.
func TestSendEndsWithContext(t *testing.T) {
	port, stalled := stallingServer(t)
	p := email.New()
	if err := p.Configure(t.Context(), sdk.Settings{
		"smtp_host": "127.0.0.1", "smtp_port": strconv.Itoa(port), "smtp_tls": email.TLSNone,
		"from": "ACME <no-reply@acme.example>", "code_key": testKey,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "dave"}, Step: sdk.EnrollBegin, Now: time.Now(),
			Inputs: map[string]string{"email": "dave@x.example"}})
		done <- err
	}()
	select {
	case <-stalled:
	case err := <-done:
		t.Fatalf("Enroll returned before the server stalled: %v", err)
	}
	cancel() // the host stops waiting
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Enroll succeeded against a server that never accepted the mail")
		}
	case <-time.After(10 * time.Second): // a watchdog, far above the moment a close takes
		t.Fatal("Enroll still waits on the SMTP server 10s after its context ended")
	}
}
