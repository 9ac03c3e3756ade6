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
// fresh window for the same mailbox.
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
	} {
		if got := framework.DestinationKey("email", tc.a) == framework.DestinationKey("email", tc.b); got != tc.same {
			t.Errorf("%q and %q in one window: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
