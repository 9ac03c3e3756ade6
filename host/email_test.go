package host_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// emailProviders is the providers config of the email plugin sending
// through srv.
func emailProviders(srv *emailtest.Server) string {
	return fmt.Sprintf(`providers:
  email:
    enabled: true
    clients: true
    settings:
      smtp_host: 127.0.0.1
      smtp_port: %d
      smtp_tls: starttls
      smtp_ca_file: %s
      smtp_username: mailer
      smtp_password: s3cret
      from: ACME <no-reply@acme.example>
      issuer: ACME
      code_key: c2l4dHktZm91ciBieXRlcyBvZiBhIHRlc3Qga2V5IG1hZGUgZm9yIHRoaXMgdGVzdA==
`, srv.Port, srv.CAFile)
}

// startEmailHost runs a host with the email provider plugin sending
// through a real SMTP server on 127.0.0.1 (STARTTLS and AUTH).
func startEmailHost(t *testing.T) (*testHost, *emailtest.Server) {
	t.Helper()
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
	plugins := testbin.Copy(t, "twofactor-provider-email")
	chmodGoW(t, plugins)
	h := startHostIn(t, plugins, emailProviders(srv), hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	return h, srv
}

// enrollEmail enrolls user with addr and confirms with the mailed code.
func enrollEmail(t *testing.T, h *testHost, srv *emailtest.Server, user, addr string) {
	t.Helper()
	n := len(srv.Messages())
	if r := h.do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); r.status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	if c := h.do("POST", "/v1/users/"+user+"/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, n, addr)}); c.str("status") != "active" {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}
}

// TestEmailLogin: through the HTTP API and the plugin binary, a user
// enrolls with an address, confirms with the mailed code, and logs in by
// starting a verification (a code sent, audited as challenge_sent, under
// the send limit) and verifying with its txid; the code works once and
// not after it expired, and an SMTP outage is unavailable and audited.
func TestEmailLogin(t *testing.T) {
	h, srv := startEmailHost(t)
	const addr = "alice@x.example"

	if r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr, "phone": "1"}}); r.status != http.StatusBadRequest {
		t.Errorf("enroll with an undeclared input: %d %v", r.status, r.body)
	}
	if r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "email", "audience": "client"}); r.status != http.StatusBadRequest {
		t.Errorf("enroll without the address: %d %v", r.status, r.body)
	}
	r := h.do("POST", "/v1/users/alice/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}})
	if r.status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	code := srv.LastCode(t, 0, addr)
	if c := h.do("POST", "/v1/users/alice/enrollments/email/confirm", appKey, map[string]string{"code": code}); c.status != http.StatusOK || c.str("status") != "active" {
		t.Fatalf("confirm: %d %v", c.status, c.body)
	}

	// The login decision says the factor needs a challenge first.
	d := h.do("POST", "/v1/users/alice/challenge", appKey, map[string]string{"audience": "client"})
	ps, _ := d.body["providers"].([]any)
	if len(ps) != 1 || fmt.Sprint(ps[0].(map[string]any)["challenge_first"]) != "[code]" {
		t.Errorf("/challenge: %v, want email with challenge_first [code]", d.body)
	}
	if v := h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "email", "audience": "client", "code": code}); v.status != http.StatusBadRequest {
		t.Errorf("verify without a challenge: %d %v, want 400", v.status, v.body)
	}

	start := func() response {
		t.Helper()
		return h.do("POST", "/v1/users/alice/verifications", appKey, map[string]string{"provider": "email", "audience": "client"})
	}
	verify := func(txid, code string) response {
		t.Helper()
		return h.do("POST", "/v1/users/alice/verify", appKey, map[string]string{"provider": "email", "audience": "client", "txid": txid, "code": code})
	}
	n := len(srv.Messages())
	s := start()
	txid := s.str("txid")
	if s.status != http.StatusCreated || txid == "" || s.str("message") == "" || s.str("resend_after") == "" {
		t.Fatalf("start: %d %v", s.status, s.body)
	}
	code = srv.LastCode(t, n, addr)
	if again := start(); again.status != http.StatusOK || again.str("txid") != txid || again.body["already_sent"] != true {
		t.Errorf("start again at once: %d %v, want the pending one (resend throttle)", again.status, again.body)
	}
	if got := len(srv.Messages()); got != n+1 {
		t.Errorf("%d mails sent for one login, want 1", got-n)
	}
	if p := h.do("GET", "/v1/users/alice/verifications/"+txid, appKey, nil); p.str("outcome") != "pending" {
		t.Errorf("poll: %d %v, want pending", p.status, p.body)
	}
	steps := []struct {
		name, txid, code string
		status           int
		outcome          string
	}{
		{"wrong code", txid, wrong(code), http.StatusOK, "deny"},
		{"no code", txid, "", http.StatusBadRequest, ""},
		{"unknown txid", "nope", code, http.StatusNotFound, ""},
		{"right code", txid, code, http.StatusOK, "allow"},
		{"replay", txid, code, http.StatusNotFound, ""},
	}
	for _, st := range steps {
		if v := verify(st.txid, st.code); v.status != st.status || v.str("outcome") != st.outcome {
			t.Errorf("%s: %d %v, want %d %q", st.name, v.status, v.body, st.status, st.outcome)
		}
	}

	// Expiry, on the host's clock, which the provider is given as Now.
	h.clock.Add(time.Minute)
	s = start()
	code = srv.LastCode(t, len(srv.Messages())-1, addr)
	h.clock.Add(5*time.Minute + time.Second)
	if v := verify(s.str("txid"), code); v.str("outcome") != "deny" || v.str("reason") != "expired" {
		t.Errorf("an expired code: %d %v", v.status, v.body)
	}

	// SMTP down: unavailable, audited; the send still counts, nothing pending.
	srv.Stop()
	h.clock.Add(time.Minute)
	if s := start(); s.status != http.StatusServiceUnavailable || s.errCode() != "provider_unavailable" {
		t.Errorf("start with SMTP down: %d %v", s.status, s.body)
	}

	var events []string
	for _, e := range h.do("GET", "/v1/audit?user=alice", adminKey, nil).body["entries"].([]any) {
		m := e.(map[string]any)
		if ev := m["event"].(string); ev == "challenge_sent" || ev == "verify" {
			events = append(events, fmt.Sprintf("%s:%v:%v", ev, m["outcome"], m["reason"]))
		}
	}
	want := []string{"verify:error:invalid_request", "challenge_sent:sent:<nil>", "challenge_sent:already_sent:<nil>", "verify:pending:waiting",
		"verify:deny:invalid_code", "verify:error:invalid_request", "verify:error:not_found", "verify:allow:<nil>", "verify:error:not_found",
		"challenge_sent:sent:<nil>", "verify:deny:expired", "challenge_sent:error:provider_unavailable"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("audit:\n got %v\nwant %v", events, want)
	}
	_, m := h.scrape(adminKey)
	m.want(t, 2, "twofactor_challenges_total", "provider", "email", "outcome", "sent")
	m.want(t, 1, "twofactor_challenges_total", "provider", "email", "outcome", "provider_unavailable")
}

// wrong returns another code of the same length.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// TestEmailSendLimit: a burst of starts sends one code; after
// resend_after a new one replaces it; the push limit (3 per 10 minutes)
// then refuses with 429 and Retry-After, and nothing more is mailed.
func TestEmailSendLimit(t *testing.T) {
	h, srv := startEmailHost(t)
	enrollEmail(t, h, srv, "bob", "bob@x.example")
	start := func() response {
		return h.do("POST", "/v1/users/bob/verifications", appKey, map[string]string{"provider": "email", "audience": "client"})
	}
	const burst = 8
	results := make(chan response, burst)
	for range burst {
		go func() { results <- start() }()
	}
	created, txids := 0, map[string]bool{}
	for range burst {
		r := <-results
		if r.status == http.StatusCreated {
			created++
		}
		txids[r.str("txid")] = true
	}
	if created != 1 || len(txids) != 1 || len(srv.Messages()) != 2 {
		t.Errorf("burst of %d starts: %d created, txids %v, %d mails; want 1, one txid, 2 mails (enroll + 1)", burst, created, txids, len(srv.Messages()))
	}
	for i := range 2 { // sends 2 and 3 of the window, each after resend_after
		h.clock.Add(30 * time.Second)
		if r := start(); r.status != http.StatusCreated || txids[r.str("txid")] {
			t.Fatalf("start %d after resend_after: %d %v, want a new txid", i+2, r.status, r.body)
		}
	}
	h.clock.Add(30 * time.Second)
	r := start()
	if r.status != http.StatusTooManyRequests || r.errCode() != "locked_out" || r.header.Get("Retry-After") == "" {
		t.Errorf("fourth send in the window: %d %v, want 429 with Retry-After", r.status, r.body)
	}
	if got := len(srv.Messages()); got != 4 {
		t.Errorf("%d mails, want 4 (enroll + 3)", got)
	}
}

// TestEmailSendLimitAcrossReplicas: two host processes on one PostgreSQL
// store; a burst of starts for one user, split between them, mails one
// code: the send limit is the store's guarantee, not one process's.
func TestEmailSendLimitAcrossReplicas(t *testing.T) {
	srv, ra, rb := startEmailReplicas(t)
	enrollEmail(t, ra, srv, "dave", "dave@x.example")

	hosts := []*testHost{ra, rb}
	created, txids := 0, map[string]bool{}
	for _, r := range burst.Run(10, func(i int) response {
		return hosts[i%2].do("POST", "/v1/users/dave/verifications", appKey, map[string]string{"provider": "email", "audience": "client"})
	}) {
		if r.status == http.StatusCreated {
			created++
		}
		txids[r.str("txid")] = true
	}
	if created != 1 || len(txids) != 1 || len(srv.Messages()) != 2 {
		t.Errorf("burst over two replicas: %d created, txids %v, %d mails; want 1, one txid, 2 (enroll + 1)", created, txids, len(srv.Messages()))
	}
}

// TestEmailEnrollSendLimitAcrossReplicas: beginning an email enrollment
// mails a code, so it passes the send limit per user and per address.
// Ten begins at once, from two accounts, all to one victim's address,
// split over two replicas: three are mailed (the limit, 3 per 10 minutes),
// seven answered 429 with Retry-After and audited, nothing else sent.
func TestEmailEnrollSendLimitAcrossReplicas(t *testing.T) {
	srv, ra, rb := startEmailReplicas(t)
	hosts := []*testHost{ra, rb}
	got := map[int]int{}
	for _, r := range burst.Run(10, func(i int) response {
		user := []string{"mallory", "trudy"}[i%2]
		r := hosts[i/2%2].do("POST", "/v1/users/"+user+"/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
			"inputs": map[string]string{"email": "victim@x.example"}})
		if r.status == http.StatusTooManyRequests && (r.errCode() != "locked_out" || r.header.Get("Retry-After") != "600") {
			t.Errorf("refusal: %v, Retry-After %q", r.body, r.header.Get("Retry-After"))
		}
		return r
	}) {
		got[r.status]++
	}
	refused := ra.auditCount("mallory", "enroll.begin", "deny") + ra.auditCount("trudy", "enroll.begin", "deny")
	if got[http.StatusCreated] != 3 || got[http.StatusTooManyRequests] != 7 || len(srv.Messages()) != 3 || refused != 7 {
		t.Errorf("10 begins to one address over two replicas: answers %v, %d mails, %d refusals audited; want 3 created, 7 refused, 3 mails, 7 audited",
			got, len(srv.Messages()), refused)
	}
}

// startEmailReplicas starts two host processes on one PostgreSQL store
// with the email provider plugin sending through a real SMTP server.
func startEmailReplicas(t *testing.T) (*emailtest.Server, *testHost, *testHost) {
	t.Helper()
	srv := emailtest.Start(t, emailtest.Options{Username: "mailer", Password: "s3cret", StartTLS: true})
	config, plugins := postgresConfigAt(t, postgresDSN(t), emailProviders(srv))
	bin, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(bin, "twofactor-provider-email"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "twofactor-provider-email"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	chmodGoW(t, plugins)
	ra, rb := startReplica(t, config), startReplica(t, config)
	t.Cleanup(ra.stop)
	t.Cleanup(rb.stop)
	return srv, ra, rb
}

// TestEmailConfirmCountsWrongCodes: through the plugin binary, each
// refused confirmation stores the state the provider returned, so its
// count of wrong codes carries to the next confirm: after three the
// mailed code is dropped and even the right one is refused.
func TestEmailConfirmCountsWrongCodes(t *testing.T) {
	h, srv := startEmailHost(t)
	const addr = "cleo@x.example"
	if r := h.do("POST", "/v1/users/cleo/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); r.status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	code := srv.LastCode(t, 0, addr)
	confirm := func(code string) response {
		t.Helper()
		return h.do("POST", "/v1/users/cleo/enrollments/email/confirm", appKey, map[string]string{"code": code})
	}
	for i := range 3 {
		if c := confirm(wrong(code)); c.status != http.StatusUnprocessableEntity || c.errCode() != "invalid_code" {
			t.Fatalf("wrong code %d: %d %v", i+1, c.status, c.body)
		}
	}
	if c := confirm(code); c.status != http.StatusUnprocessableEntity || c.errCode() != "expired" {
		t.Errorf("the right code after three wrong ones: %d %v, want 422 expired", c.status, c.body)
	}
}

// TestEmailConfirmBurstCountsWrongCodes: TestEmailConfirmCountsWrongCodes
// with the wrong codes sent at once, on one host and split over two
// replicas: five wrong codes (as many as the attempt gate lets through)
// spend the mailed code's three wrong guesses, the others are refused
// without a check, and the right code is then refused. Before, the
// confirmations that lost the state's compare-and-swap were answered a
// conflict and given their attempt back, and the burst cost one of the
// three guesses: the right code was accepted after it.
func TestEmailConfirmBurstCountsWrongCodes(t *testing.T) {
	t.Run("one host", func(t *testing.T) {
		h, srv := startEmailHost(t)
		emailConfirmBurst(t, srv, []*testHost{h})
	})
	t.Run("two replicas", func(t *testing.T) {
		srv, ra, rb := startEmailReplicas(t)
		emailConfirmBurst(t, srv, []*testHost{ra, rb})
	})
}

func emailConfirmBurst(t *testing.T, srv *emailtest.Server, hosts []*testHost) {
	const addr = "dora@x.example"
	if r := hosts[0].do("POST", "/v1/users/dora/enrollments", appKey, map[string]any{"provider": "email", "audience": "client",
		"inputs": map[string]string{"email": addr}}); r.status != http.StatusCreated {
		t.Fatalf("enroll: %d %v", r.status, r.body)
	}
	code := srv.LastCode(t, 0, addr)
	confirm := func(h *testHost, code string) response {
		return h.do("POST", "/v1/users/dora/enrollments/email/confirm", appKey, map[string]string{"code": code})
	}
	got := map[string]int{}
	for _, r := range burst.Run(free, func(i int) response {
		b := []byte(code)
		b[0] = '0' + (b[0]-'0'+byte(i)+1)%10 // a different wrong code each
		return confirm(hosts[i%len(hosts)], string(b))
	}) {
		got[fmt.Sprint(r.status, " ", r.errCode())]++
	}
	if got["422 invalid_code"] != 3 || got["422 invalid_code"]+got["422 expired"] != free {
		t.Errorf("%d wrong codes at once: %v; want 3 refused as wrong (the mailed code's guesses) and the rest as expired", free, got)
	}
	// Past the backoff the burst's attempts in flight at once may have set
	// (the replicas keep the real clock: there, that backoff may answer).
	hosts[0].clock.Add(framework.DefaultLockoutPolicy.Backoff + time.Second)
	r := confirm(hosts[len(hosts)-1], code)
	locked := len(hosts) > 1 && r.status == http.StatusTooManyRequests
	if !locked && (r.status != http.StatusUnprocessableEntity || r.errCode() != "expired") {
		t.Errorf("the right code after %d wrong ones at once: %d %v, want 422 expired", free, r.status, r.body)
	}
}
