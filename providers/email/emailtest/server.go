// Package emailtest runs a real SMTP server on 127.0.0.1 for tests of the
// email provider (github.com/emersion/go-smtp's server): it accepts mail,
// optionally requires AUTH PLAIN and offers STARTTLS with a certificate
// made for the test, and hands the delivered messages to the test.
package emailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options choose what the server demands.
type Options struct {
	Username, Password string // AUTH PLAIN required when set
	StartTLS           bool   // offer STARTTLS with a certificate for 127.0.0.1 (CAFile trusts it)
	ImplicitTLS        bool   // TLS from the first byte instead (port 465 style)
	// DataReply, when set, is asked for the answer to each message's end
	// of DATA, given the message: an error (an *smtp.SMTPError sets the
	// code and text, as a content filter's 554 does) refuses it, nil
	// delivers it.
	DataReply func(data string) error
}

// Message is one delivered mail.
type Message struct {
	From string
	To   []string
	Data string
}

// Server is a running SMTP server.
type Server struct {
	Host   string // 127.0.0.1
	Port   int
	CAFile string // PEM of the certificate's CA, with StartTLS

	opts Options
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	news chan struct{}
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{Host: "127.0.0.1", opts: opts, news: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = !opts.StartTLS && !opts.ImplicitTLS
	// As Postfix (smtputf8_enable, on by default) does: an address with
	// characters beyond ASCII is delivered, not refused by the server.
	s.srv.EnableSMTPUTF8 = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	var tlsCfg *tls.Config
	if opts.StartTLS || opts.ImplicitTLS {
		tlsCfg, s.CAFile = selfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		s.srv.TLSConfig = tlsCfg
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Stop closes the server: later connections are refused (an SMTP outage).
func (s *Server) Stop() { s.srv.Close() }

// Messages returns what was delivered so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// codeLine finds the code in the text body: alone on a line, indented.
var codeLine = regexp.MustCompile(`(?m)^    ([0-9]{6,8})\r?$`)

// CodeOf extracts the code of a delivered message, or "".
func CodeOf(m Message) string {
	if c := codeLine.FindStringSubmatch(m.Data); c != nil {
		return c[1]
	}
	return ""
}

// LastCode returns the code of the last message to addr, waiting up to
// 10 seconds for one to arrive after the first n messages (polling the
// delivery signal, never sleeping blind); it fails the test otherwise.
func (s *Server) LastCode(t testing.TB, n int, addr string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		msgs := s.Messages()
		for i := len(msgs) - 1; i >= n; i-- {
			for _, to := range msgs[i].To {
				if to == addr {
					if c := CodeOf(msgs[i]); c != "" {
						return c
					}
					t.Fatalf("message to %s has no code:\n%s", addr, msgs[i].Data)
				}
			}
		}
		select {
		case <-s.news:
		case <-deadline:
			t.Fatalf("no mail to %s after message %d", addr, n)
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *Server
	authed bool
	msg    Message
}

func (se *session) AuthMechanisms() []string {
	if se.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != se.s.opts.Username || pass != se.s.opts.Password {
			return errors.New("invalid credentials")
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.Username != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.msg.From = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.msg.To = append(se.msg.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.msg.Data = string(b)
	if reply := se.s.opts.DataReply; reply != nil {
		if err := reply(se.msg.Data); err != nil {
			return err
		}
	}
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, se.msg)
	se.s.mu.Unlock()
	select {
	case se.s.news <- struct{}{}:
	default:
	}
	return nil
}

func (se *session) Reset()        { se.msg = Message{} }
func (se *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and writes it as the CA
// file the provider is told to trust.
func selfSigned(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "emailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, path
}
