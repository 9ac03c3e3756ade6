package host_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// lockedBuffer collects log lines written from the host's and the
// plugin's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmailSendRefusalEchoingTheMail: through the plugin binary, a
// content filter answers the end of DATA with a 554 quoting the body's
// line that holds the code. The enrollment fails (nothing stored), and
// neither the answer nor any host or plugin log line, at every level,
// holds the code.
func TestEmailSendRefusalEchoingTheMail(t *testing.T) {
	var mu sync.Mutex
	var codes []string
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true, DataReply: func(data string) error {
		code := emailtest.CodeOf(emailtest.Message{Data: data})
		mu.Lock()
		codes = append(codes, code)
		mu.Unlock()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected: " + code}
	}})
	var logs lockedBuffer
	plugins := testbin.Copy(t, "twofactor-provider-email")
	chmodGoW(t, plugins)
	h := startHostIn(t, plugins, emailProviders(srv), hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace}))
	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": "alice@x.example"}})
	if r.status < 500 {
		t.Errorf("begin refused by the server: %d %v, want a 5xx", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(codes) != 1 || codes[0] == "" {
		t.Fatalf("the filter saw codes %q, want one", codes)
	}
	if strings.Contains(fmt.Sprint(r.body), codes[0]) {
		t.Errorf("the answer holds the mailed code %s: %v", codes[0], r.body)
	}
	if strings.Contains(logs.String(), codes[0]) {
		t.Errorf("the log holds the mailed code %s:\n%s", codes[0], logs.String())
	}
	if !strings.Contains(logs.String(), "554") {
		t.Errorf("the log does not name the server's 554:\n%s", logs.String())
	}
}
