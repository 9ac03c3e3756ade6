package host_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEmailEnrollSendLimitAddressVariants: the destination's send window
// (3 per 10 minutes) is the victim's mailbox, not the string typed. Six
// accounts each begin an email enrollment to the victim's address spelled
// as mail systems deliver it to the same mailbox: a sub-address tag
// (victim+tag@, which Gmail, Outlook, Fastmail and Postfix's default
// recipient_delimiter deliver to victim@), another case, and a fullwidth
// domain (Ｘ.example, which IDNA maps to x.example). Three are
// mailed, the others refused 429; without folding the tag, each spelling
// had a window of its own and every account mailed the victim.
func TestEmailEnrollSendLimitAddressVariants(t *testing.T) {
	h, srv := startEmailHost(t)
	variants := []string{"victim@x.example", "victim+1@x.example", "Victim+news@X.example",
		"victim+a+b@x.example", "VICTIM+2@\uff38.example", "victim+@x.example"}
	got := map[int]int{}
	for i, addr := range variants {
		user := "mallory" + string(rune('a'+i))
		r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
			"inputs": map[string]string{"email": addr}})
		got[r.status]++
		if r.status != http.StatusCreated && (r.status != http.StatusTooManyRequests || r.errCode() != "locked_out") {
			t.Errorf("begin to %s: %d %v", addr, r.status, r.body)
		}
	}
	toVictim := 0
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			local, domain, _ := strings.Cut(strings.ToLower(to), "@")
			local, _, _ = strings.Cut(local, "+")
			if local+"@"+domain == "victim@x.example" {
				toVictim++
			}
		}
	}
	if toVictim != 3 || got[http.StatusCreated] != 3 || got[http.StatusTooManyRequests] != 3 {
		t.Errorf("6 accounts to one mailbox under 6 spellings: %d mails reached it, answers %v; want 3 mails, 3 created and 3 refused",
			toVictim, got)
	}
}

// TestEmailEnrollAddressOfUnicodeMailbox: an address whose first
// character is not ASCII (élodie@x.example, RFC 6531; the server speaks
// SMTPUTF8) is enrolled through the plugin binary: the begin answers 201
// with instructions naming the masked address, and the mailed code
// confirms it.
func TestEmailEnrollAddressOfUnicodeMailbox(t *testing.T) {
	h, srv := startEmailHost(t)
	const addr = "élodie@x.example"
	r := h.do("POST", "/v1/users/elodie/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}})
	if r.status != http.StatusCreated || !strings.Contains(fmt.Sprint(r.body), "é***@x.example") {
		t.Fatalf("begin with %s: %d %v; want 201 naming é***@x.example (%d mails sent)", addr, r.status, r.body, len(srv.Messages()))
	}
	if c := h.do("POST", "/v1/users/elodie/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, 0, addr)}); c.str("status") != "active" {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}
}
