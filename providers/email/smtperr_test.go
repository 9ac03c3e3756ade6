package email_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/providers/email/emailtest"
	"github.com/twofactor/twofactor/sdk"
)

// echoingFilter is an SMTP server whose content filter refuses every
// message with a 554 that quotes the line of the body holding the code,
// as some filters quote what they matched. It returns the codes it saw.
func echoingFilter(t *testing.T) (*emailtest.Server, func() []string) {
	var mu sync.Mutex
	var codes []string
	srv := emailtest.Start(t, emailtest.Options{DataReply: func(data string) error {
		code := emailtest.CodeOf(emailtest.Message{Data: data})
		if code == "" {
			t.Errorf("a refused message holds no code:\n%s", data)
		}
		mu.Lock()
		codes = append(codes, code)
		mu.Unlock()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "content rejected: line \"    " + code + "\""}
	}})
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), codes...)
	}
}

// TestSendRefusalEchoingTheMail: a server's answer to the end of DATA may
// quote the message, and so the code; the send fails as unavailable with
// the server's status (554 5.7.1) but neither the error the provider
// returns (which the host logs) nor the provider's log holds the code,
// at enrollment or at a login's challenge.
func TestSendRefusalEchoingTheMail(t *testing.T) {
	srv, seen := echoingFilter(t)
	var logs bytes.Buffer
	p := email.New(email.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})))
	if err := p.Configure(t.Context(), settings(srv, nil)); err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: time.Now(),
		Inputs: map[string]string{"email": "alice@x.example"}})
	errs = append(errs, err)
	st := []byte(`{"v":1,"address":"alice@x.example"}`)
	_, err = p.Challenge(t.Context(), sdk.ChallengeRequest{User: sdk.User{ID: "alice"}, State: st, Now: time.Now()})
	errs = append(errs, err)
	codes := seen()
	if len(codes) != 2 {
		t.Fatalf("the filter saw %d messages, want 2 (errors %v)", len(codes), errs)
	}
	for i, err := range errs {
		if sdk.KindOf(err) != sdk.KindUnavailable || !strings.Contains(err.Error(), "554") {
			t.Errorf("send %d: %v, want unavailable naming the server's 554", i, err)
		}
		for _, c := range codes {
			if err != nil && strings.Contains(err.Error(), c) {
				t.Errorf("send %d: the error holds a mailed code %s: %v", i, c, err)
			}
			if strings.Contains(logs.String(), c) {
				t.Errorf("the provider's log holds a mailed code %s:\n%s", c, logs.String())
			}
		}
	}
}
