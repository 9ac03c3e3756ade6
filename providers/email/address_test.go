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
		{"domain with a zero-width joiner (IDNA)", "a@x\u200d.example"},
		{"domain label with -- in 3rd and 4th place (IDNA)", "a@ab--c.example"},
		{"xn-- label that is no punycode (IDNA)", "a@xn--a.example"},
		{"domain mixing right-to-left and left-to-right (IDNA)", "a@\u05d0a.example"},
		{"domain with an empty label", "a@x..example"},
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
	// An international domain is mailed to, and shown, in its ASCII form
	// (IDNA, UTS #46): the form the send window counts, and the mailbox a
	// server delivers the Unicode spelling to.
	for _, tc := range []struct{ addr, to string }{
		{"élodie@bücher.example", "élodie@xn--bcher-kva.example"},
		{"victim@\uff58.example", "victim@x.example"}, // fullwidth x
		{"Bob@X.Example", "Bob@x.example"},
	} {
		n := len(srv.Messages())
		r, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "alice"}, Step: sdk.EnrollBegin, Now: time.Now(),
			Inputs: map[string]string{"email": tc.addr}})
		if err != nil {
			t.Errorf("begin with %q: %v", tc.addr, err)
			continue
		}
		var to []string
		for _, m := range srv.Messages()[n:] {
			if to = append(to, m.To...); !strings.Contains(m.Data, "To: "+tc.to+"\r\n") {
				t.Errorf("begin with %q: the mail's To: line is not %q", tc.addr, tc.to)
			}
		}
		if len(to) != 1 || to[0] != tc.to {
			t.Errorf("begin with %q mailed %q, want one mail to %q", tc.addr, to, tc.to)
		}
		if want := tc.to[strings.LastIndexByte(tc.to, '@'):]; !strings.Contains(r.Display.Instructions, "***"+want) {
			t.Errorf("begin with %q shows %q, want the masked %s", tc.addr, r.Display.Instructions, want)
		}
	}
	// IDNA's refusal says what is wrong with the domain.
	_, err := p.Enroll(t.Context(), sdk.EnrollRequest{User: sdk.User{ID: "mallory"}, Step: sdk.EnrollBegin, Now: time.Now(),
		Inputs: map[string]string{"email": "a@ab--c.example"}})
	if err == nil || !strings.Contains(err.Error(), "international domain name") {
		t.Errorf("begin with an IDNA-invalid domain: %v, want an error naming the international domain name", err)
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
