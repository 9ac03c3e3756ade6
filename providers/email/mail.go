package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/twofactor/twofactor/sdk"
)

// smtpTimeout bounds an SMTP session when the caller's context has no
// deadline (the host always gives one).
const smtpTimeout = 20 * time.Second

// message is what one mail says.
type message struct {
	Issuer, Code string
	Minutes      int
	Enrolling    bool
}

var textBody = texttemplate.Must(texttemplate.New("text").Parse(
	`{{if .Enrolling}}To confirm this address for {{.Issuer}}, enter this code:{{else}}Your {{.Issuer}} sign-in code is:{{end}}

    {{.Code}}

It expires in {{.Minutes}} minutes. If you did not ask for it, ignore this mail; someone may know your password.
`))

var htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(
	`<!doctype html><html><body style="font-family:sans-serif">
<p>{{if .Enrolling}}To confirm this address for {{.Issuer}}, enter this code:{{else}}Your {{.Issuer}} sign-in code is:{{end}}</p>
<p style="font-size:2em;letter-spacing:.2em"><b>{{.Code}}</b></p>
<p>It expires in {{.Minutes}} minutes. If you did not ask for it, ignore this mail; someone may know your password.</p>
</body></html>
`))

func (c *config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.host, MinVersion: tls.VersionTLS12}
	if c.caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, sdk.FieldError(sdk.KindInvalidSettings, "smtp_ca_file", "cannot be read: %v", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, sdk.FieldError(sdk.KindInvalidSettings, "smtp_ca_file", "holds no PEM certificate")
	}
	return cfg, nil
}

// dial opens an SMTP session with TLS and AUTH as configured, bounded by
// ctx. The caller calls end when done with the client (after Close): until
// then the session stays bound to ctx.
func (c *config) dial(ctx context.Context) (client *smtp.Client, end func(), err error) {
	var cancel context.CancelFunc = func() {}
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, smtpTimeout)
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	addr := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		cancel()
		return nil, nil, unavailable("connect to the SMTP server", err)
	}
	// The whole session, not only its opening, ends with the context: a
	// cancelled or expired context closes the connection, so no SMTP step
	// outlives the host's wait. A deadline on the connection alone would
	// not do: go-smtp sets its own (CommandTimeout, minutes) on every
	// command and clears it after.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	end = func() { stop(); cancel() }
	fail := func(err error) (*smtp.Client, func(), error) {
		if client != nil {
			client.Close()
		} else {
			conn.Close()
		}
		end()
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	switch c.tlsMode {
	case TLSImplicit:
		client = smtp.NewClient(tls.Client(conn, tlsCfg))
	case TLSStartTLS:
		if client, err = smtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			return fail(unavailable("STARTTLS", err))
		}
	default:
		client = smtp.NewClient(conn)
	}
	if err := client.Hello("localhost"); err != nil {
		return fail(unavailable("EHLO", err))
	}
	if c.username != "" {
		if err := client.Auth(sasl.NewPlainClient("", c.username, c.password)); err != nil {
			return fail(sdk.Errorf(sdk.KindInvalidCredentials, "SMTP AUTH refused for smtp_username %q: %v", c.username, err))
		}
	}
	return client, end, nil
}

// unavailable wraps an SMTP failure before any of the message was sent:
// the server's reply cannot quote it then, and is kept, bounded and
// printable, for the operator.
func unavailable(step string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return sdk.Errorf(sdk.KindUnavailable, "SMTP %s: the server answered %s %q", step, status(se), bounded(se.Message))
	}
	return sdk.Errorf(sdk.KindUnavailable, "SMTP %s: %s", step, bounded(err.Error()))
}

// unavailableAfterBody wraps an SMTP failure once some of the message (and
// so, perhaps, the code) went to the server: a content filter may quote
// what it matched in its reply (554 5.7.1 ... "    123456"), and the
// error is logged by the host and shown to the caller, where a code must
// never be. So only the status is kept from a reply; a broken connection
// (whose text is this machine's, not the server's) is kept as it is; any
// other error (a reply that is not SMTP, which the library quotes) is
// named by its type.
func unavailableAfterBody(step string, err error) error {
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return sdk.Errorf(sdk.KindUnavailable, "SMTP %s: the server answered %s to the message (its text is not kept: it may quote the message)",
			step, status(se))
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return sdk.Errorf(sdk.KindUnavailable, "SMTP %s: %v", step, err)
	}
	return sdk.Errorf(sdk.KindUnavailable, "SMTP %s: the server's answer to the message was not understood (%T; its text is not kept: it may quote the message)",
		step, err)
}

// status is an SMTP reply's code and, if it has one, its enhanced code.
func status(se *smtp.SMTPError) string {
	if e := se.EnhancedCode; e[0] > 0 {
		return fmt.Sprintf("%d %d.%d.%d", se.Code, e[0], e[1], e[2])
	}
	return strconv.Itoa(se.Code)
}

// maxReply bounds the server's text kept in an error: a log line, not a
// transcript.
const maxReply = 200

// bounded is s cut to maxReply bytes (at a character) with what is not
// printable replaced, so a server's reply cannot forge or flood log lines.
func bounded(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= maxReply {
		return s
	}
	cut := maxReply
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (c *config) probe(ctx context.Context) error {
	client, end, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer client.Close()
	if err := client.Quit(); err != nil {
		return unavailable("QUIT", err)
	}
	return nil
}

// send mails code to the address.
func (c *config) send(ctx context.Context, to, code string, enrolling bool) error {
	body, err := c.compose(to, message{Issuer: c.issuer, Code: code, Minutes: int(c.ttl.Round(time.Minute) / time.Minute), Enrolling: enrolling})
	if err != nil {
		return sdk.Errorf(sdk.KindInternal, "compose mail: %v", err)
	}
	client, end, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer client.Close()
	msg := &sentReader{r: bytes.NewReader(body)}
	if err := client.SendMail(c.from.Address, []string{to}, msg); err != nil {
		if msg.started {
			return unavailableAfterBody("send", err)
		}
		return unavailable("send", err)
	}
	if err := client.Quit(); err != nil {
		return unavailableAfterBody("QUIT", err)
	}
	return nil
}

// sentReader tells whether any of the message was read, that is handed to
// the server (SendMail reads it only after DATA is accepted): from then
// on a reply may quote it.
type sentReader struct {
	r       io.Reader
	started bool
}

func (s *sentReader) Read(p []byte) (int, error) {
	s.started = true
	return s.r.Read(p)
}

// compose builds a multipart/alternative mail with the text and HTML
// bodies, quoted-printable.
func (c *config) compose(to string, m message) ([]byte, error) {
	if m.Minutes < 1 {
		m.Minutes = 1
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	subject := c.issuer + " sign-in code"
	if m.Enrolling {
		subject = "Confirm your email address for " + c.issuer
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	domain := c.from.Address[strings.LastIndexByte(c.from.Address, '@')+1:]
	fmt.Fprintf(&buf, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/alternative; boundary=%q\r\n\r\n",
		c.from.String(), to, mime.QEncoding.Encode("utf-8", subject), time.Now().UTC().Format(time.RFC1123Z),
		hex.EncodeToString(id), domain, mw.Boundary())
	for _, part := range []struct {
		ctype string
		exec  func(*bytes.Buffer) error
	}{
		{"text/plain; charset=utf-8", func(b *bytes.Buffer) error { return textBody.Execute(b, m) }},
		{"text/html; charset=utf-8", func(b *bytes.Buffer) error { return htmlBody.Execute(b, m) }},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		var body bytes.Buffer
		if err := part.exec(&body); err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(body.Bytes()); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
