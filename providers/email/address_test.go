package email_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/email"
	"github.com/twofactor/twofactor/providers/email/emailtest"
	"github.com/twofactor/twofactor/sdk"
)

// TestEnrollAddressRefused: the address an enrollment mails is checked at
// the boundary: what is no mailbox anyone can be sent to, or what shows
// the user (in "We sent a code to a***@...") and the mail's To: line
// something else than the mailbox it reaches, is refused as
// invalid_request on the "email" input before anything is sent, with a
// message that says so. Accepted, each went to the SMTP server: mailed, or
// refused there as a server outage.
func TestEnrollAddressRefused(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	p := email.New()
	if err := p.Configure(t.Context(), settings(srv, nil)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, addr string }{
		{"header injection", "a@x.example\r\nBcc: b@y.example"},
		{"two recipients", "a@x.example, b@y.example"},
		{"right-to-left override", "a\u202e@x.example"},
		{"zero-width space", "vic\u200btim@x.example"},
		{"next line (NEL)", "a@x\u0085.example"},
		{"line separator", "a@x.example\u2028"},
		{"no-break space", "a\u00a0b@x.example"},
		{"fullwidth domain", "victim@\uff58.example"},
		{"domain literal", "a@[10.0.0.5]"},
		{"domain label with an underscore", "a@x_y.example"},
		{"local part over 64 bytes", strings.Repeat("a", 65) + "@x.example"},
		{"address over 254 bytes", "a@" + strings.Repeat("b", 61) + "." + strings.Repeat("c", 61) + "." + strings.Repeat("d", 61) + "." + strings.Repeat("e", 61) + ".example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(srv.Messages())
			_, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "mallory"}, Step: sdk.EnrollBegin, Now: time.Now(),
				Inputs: map[string]string{"email": tc.addr}})
			if !errors.Is(err, &sdk.Error{Kind: sdk.KindInvalidRequest, Field: "email"}) {
				t.Errorf("begin with %q: %v, want invalid_request on email", tc.addr, err)
			}
			for _, m := range srv.Messages()[n:] {
				t.Errorf("begin with %q mailed a code to %q", tc.addr, m.To)
			}
		})
	}
	// What real mailboxes are spelled like still goes.
	for _, addr := range []string{"alice@x.example", "a.b+tag@sub.x.example", "o'brien@x-y.example", "Bob@X.Example",
		strings.Repeat("a", 64) + "@x.example", "a@xn--bcher-kva.example"} {
		if _, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: time.Now(),
			Inputs: map[string]string{"email": addr}}); err != nil {
			t.Errorf("begin with %q: %v", addr, err)
		}
	}
}
