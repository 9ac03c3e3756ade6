package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// TestEnrollSendLimit: starting an email enrollment mails a code, so it
// passes the send limit (max_pushes, 3 per 10 minutes by default) per user
// and per address. Reposting one enroll form with someone else's address
// mails them at most three codes; a second account gets none more to that
// address; the refusal says when to try again, keeps what the user typed
// and is audited; the window passes and the address may be mailed again.
// Without the limit, each post mailed a code: twenty posts, twenty mails.
func TestEnrollSendLimit(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), emailClients(srv))
	mailsTo := func(addr string) int {
		n := 0
		for _, m := range srv.Messages() {
			if strings.Join(m.To, ",") == addr {
				n++
			}
		}
		return n
	}
	enrollForm := func(user, addr string) url.Values {
		f := h.get(h.link(user, map[string]any{"page": "enroll", "audience": "client", "provider": "email"}), true).form(t)
		f.Set("input_email", addr)
		return f
	}

	f := enrollForm("mallory", "victim@x.example")
	refused := 0
	for i := range 20 {
		r := h.post("/ui/enroll/begin", f, nil)
		switch {
		case r.status == http.StatusOK && strings.Contains(r.body, `id="code"`):
		case r.status == http.StatusOK && strings.Contains(r.body, "Too many codes were sent. For your security, try again in 10 minutes."):
			refused++
			if !strings.Contains(r.body, `value="victim@x.example"`) {
				t.Errorf("post %d: the refusal lost the typed address: %s", i+1, r.body)
			}
		default:
			t.Fatalf("post %d: %d %s", i+1, r.status, r.body)
		}
	}
	if got := mailsTo("victim@x.example"); got != 3 || refused != 17 {
		t.Errorf("20 posts of one enroll form: %d mails to the address, %d refused; want 3 and 17", got, refused)
	}
	if got := h.audited("mallory", "enroll.begin", "deny"); got != 17 {
		t.Errorf("audited refusals: %d, want 17", got)
	}

	// Another account, the same address (spelled otherwise): the address's
	// window is full.
	r := h.post("/ui/enroll/begin", enrollForm("trudy", " Victim@X.example"), nil)
	if !strings.Contains(r.body, "Too many codes were sent") || mailsTo("victim@x.example") != 3 {
		t.Errorf("a second account mailed the address: %d mails; page %.300s", mailsTo("victim@x.example"), r.body)
	}
	// Mallory's own window is full too: no other address either.
	if r := h.post("/ui/enroll/begin", enrollForm("mallory", "other@x.example"), nil); !strings.Contains(r.body, "Too many codes were sent") || mailsTo("other@x.example") != 0 {
		t.Errorf("mallory mailed another address past her limit: %.300s", r.body)
	}
	// Trudy may still mail her own address.
	if r := h.post("/ui/enroll/begin", enrollForm("trudy", "trudy@x.example"), nil); !strings.Contains(r.body, `id="code"`) || mailsTo("trudy@x.example") != 1 {
		t.Errorf("trudy's own address: %d mails; page %.300s", mailsTo("trudy@x.example"), r.body)
	}

	// The window passes: the address gets a code again.
	h.clock.Add(10 * time.Minute)
	if r := h.post("/ui/enroll/begin", enrollForm("erin", "victim@x.example"), nil); !strings.Contains(r.body, `id="code"`) || mailsTo("victim@x.example") != 4 {
		t.Errorf("after the window: %d mails; page %.300s", mailsTo("victim@x.example"), r.body)
	}
}

// TestEnrollSendLimitBurst: eight posts of one enroll form at once mail
// the address three codes, whatever the interleaving.
func TestEnrollSendLimitBurst(t *testing.T) {
	srv := emailtest.Start(t, emailtest.Options{})
	h := startHost(t, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), emailClients(srv))
	f := h.get(h.link("mallory", map[string]any{"page": "enroll", "audience": "client", "provider": "email"}), true).form(t)
	f.Set("input_email", "victim@x.example")
	var wg sync.WaitGroup
	pages := make([]page, 8)
	for i := range pages {
		wg.Go(func() { pages[i] = h.post("/ui/enroll/begin", f, nil) })
	}
	wg.Wait()
	sent, refused := 0, 0
	for _, p := range pages {
		switch {
		case strings.Contains(p.body, `id="code"`):
			sent++
		case strings.Contains(p.body, "Too many codes were sent"):
			refused++
		}
	}
	mails := 0
	for _, m := range srv.Messages() {
		if strings.Join(m.To, ",") == "victim@x.example" {
			mails++
		}
	}
	if mails != 3 || sent != 3 || refused != 5 {
		t.Errorf("a burst of 8: %d mails, %d code pages, %d refused; want 3, 3, 5", mails, sent, refused)
	}
}
