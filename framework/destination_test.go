package framework_test

import (
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// TestDestinationKeyMailbox: the destination's send window is the mailbox
// a mail server delivers to, so every spelling of one address counts in
// one window, and addresses that are different mailboxes keep their own.
// An international domain is counted in its ASCII (IDNA) form, the one the
// provider mails to: a fullwidth or Unicode spelling of a domain was a
// fresh window for the same mailbox. Dots fold only at Gmail, the one
// large provider that documents them as ignored.
func TestDestinationKeyMailbox(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"victim@x.example", "victim@\uff58.example", true}, // fullwidth x
		{"victim@x.example", "victim@\uff38.EXAMPLE", true}, // fullwidth X, upper case
		{"élodie@xn--bcher-kva.example", "élodie@bücher.example", true},
		{"élodie@xn--bcher-kva.example", "élodie@BÜCHER.example", true},
		{"victim@x.example", "Victim+tag@X.example", true},
		{"victim@x.example", "victim@y.example", false},
		{"victim@bucher.example", "victim@bücher.example", false},
		// Gmail ignores dots in the local part and delivers googlemail.com
		// to gmail.com (documented by Google): one mailbox, one window.
		{"victim@gmail.com", "v.i.c.t.i.m@gmail.com", true},
		{"victimname@gmail.com", "Victim.Name+x@GoogleMail.com", true},
		{"victim@gmail.com", "vic.tim@\uff47mail.com", true}, // fullwidth g
		// Elsewhere a dot, a hyphen or an underscore names another
		// mailbox (Outlook, Yahoo, a company's server): their windows stay
		// apart, so one user's enrollments never block another's mails.
		{"a.b@outlook.com", "ab@outlook.com", false},
		{"a.b@x.example", "ab@x.example", false},
		{"a-b@yahoo.com", "a@yahoo.com", false},
		{"a_b@x.example", "ab@x.example", false},
		{"victim@gmail.com", "victim@gmail.com.example", false},
		{"v.ictim@mail.gmail.com", "victim@mail.gmail.com", false},
	} {
		if got := framework.DestinationKey("email", tc.a) == framework.DestinationKey("email", tc.b); got != tc.same {
			t.Errorf("%q and %q in one window: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
