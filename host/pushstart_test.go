package host_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/internal/duoconfig"
	"github.com/twofactor/twofactor/internal/testbin"
	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/providers/email/emailtest"
)

// emailStaff is a providers.email entry for staff, sending through srv
// in plain SMTP (srv is on 127.0.0.1).
func emailStaff(srv *emailtest.Server) string {
	return fmt.Sprintf(`  email:
    enabled: true
    staff: true
    settings:
      smtp_host: 127.0.0.1
      smtp_port: %d
      smtp_tls: none
      from: ACME <no-reply@acme.example>
      code_key: c2l4dHktZm91ciBieXRlcyBvZiBhIHRlc3Qga2V5IG1hZGUgZm9yIHRoaXMgdGVzdA==
`, srv.Port)
}

// pushesSent counts the pushes the emulator was asked to send.
func pushesSent(emu *duotest.Server) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "push" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// TestDuoPushStart: a Duo push is started like an emailed code, POST
// .../verifications with factor push, audited as challenge_sent (not a
// pending verify); it is finished by POST .../verify with its txid and no
// code, or by polling; verify with factor push still starts one.
func TestDuoPushStart(t *testing.T) {
	emu, h := enrolledDuoHost(t, duoconfig.Options{Failmode: "secure"}, "dave")
	startFor := func(session string) response {
		t.Helper()
		return h.do("POST", "/v1/users/dave/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "push", "session": session})
	}
	start := func() response { t.Helper(); return startFor("login-1") }
	if r := h.do("POST", "/v1/users/nobody/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "push"}); r.status != http.StatusNotFound || r.errCode() != "not_enrolled" {
		t.Errorf("a push start for a user without the factor: %d %v, want 404 not_enrolled as for a code", r.status, r.body)
	}

	emu.ScriptPush("dave", duotest.Push{Result: "allow", After: 20 * time.Second})
	s := start()
	txid := s.str("txid")
	if s.status != http.StatusCreated || txid == "" || s.str("message") == "" || s.str("expires_at") == "" || s.str("resend_after") != s.str("expires_at") {
		t.Fatalf("start a push: %d %v", s.status, s.body)
	}
	if again := start(); again.status != http.StatusOK || again.str("txid") != txid || again.body["already_sent"] != true {
		t.Errorf("start again while pending: %d %v", again.status, again.body)
	}
	if v := h.duoVerify("dave", map[string]string{"factor": "push", "session": "login-1"}); v.str("outcome") != "pending" || v.str("txid") != txid {
		t.Errorf("verify factor push while pending: %d %v, want the same pending push", v.status, v.body)
	}
	// Another login (someone else with the password), or one that names
	// none, gets neither the pending push nor one of its own.
	for _, session := range []string{"login-2", ""} {
		if o := startFor(session); o.status != http.StatusTooManyRequests || o.errCode() != "locked_out" || o.str("txid") != "" {
			t.Errorf("start of login %q while login-1's push waits: %d %v, want 429 and no txid", session, o.status, o.body)
		}
	}
	if v := h.duoVerify("dave", map[string]string{"factor": "push", "session": "login-2"}); v.status != http.StatusTooManyRequests || v.str("txid") != "" {
		t.Errorf("verify factor push of another login while pending: %d %v, want 429 and no txid", v.status, v.body)
	}
	if v := h.duoVerify("dave", map[string]string{"txid": txid}); v.str("outcome") != "pending" {
		t.Errorf("verify with the txid before the answer: %d %v", v.status, v.body)
	}
	if v := h.duoVerify("dave", map[string]string{"txid": txid, "factor": "passcode", "code": "123456"}); v.status != http.StatusNotFound {
		t.Errorf("a push's txid answered with a passcode: %d %v, want 404", v.status, v.body)
	}
	if n := pushesSent(emu); n != 1 {
		t.Errorf("%d pushes sent, want 1", n)
	}
	emu.SetClockOffset(21 * time.Second) // the emulator's user answers
	if v := h.duoVerify("dave", map[string]string{"txid": txid}); v.str("outcome") != "allow" {
		t.Fatalf("verify with the txid after the approval: %d %v", v.status, v.body)
	}
	if p := h.poll("dave", txid); p.status != http.StatusNotFound {
		t.Errorf("poll a finished push: %d %v", p.status, p.body)
	}

	// Compatibility: verify with factor push starts one; a poll finishes it.
	emu.ScriptPush("dave", duotest.Push{Result: "deny"})
	v := h.duoVerify("dave", map[string]string{"factor": "push", "session": "login-3"})
	if v.str("outcome") != "pending" || v.str("txid") == "" {
		t.Fatalf("verify factor push: %d %v", v.status, v.body)
	}
	if p := h.poll("dave", v.str("txid")); p.str("outcome") != "deny" || p.str("reason") != "denied_by_user" {
		t.Errorf("poll the denied push: %d %v", p.status, p.body)
	}

	// Duo decides at once (a bypass user): nothing is sent, the start
	// answers the decision, audited as the verify it is.
	sent := pushesSent(emu)
	emu.SetPreauthResult("dave", "allow", "Bypass user")
	if d := start(); d.status != http.StatusOK || d.str("outcome") != "allow" || d.str("txid") != "" {
		t.Errorf("start for a bypass user: %d %v", d.status, d.body)
	}
	if n := pushesSent(emu); n != sent {
		t.Errorf("a bypass sent %d pushes", n-sent)
	}

	var events []string
	for _, e := range h.do("GET", "/v1/audit?user=dave", adminKey, nil).body["entries"].([]any) {
		m := e.(map[string]any)
		if ev := m["event"].(string); ev == "challenge_sent" || ev == "verify" {
			events = append(events, fmt.Sprintf("%s:%v", ev, m["outcome"]))
		}
	}
	want := []string{"challenge_sent:sent", "challenge_sent:already_sent", "verify:pending",
		"challenge_sent:deny", "challenge_sent:deny", "verify:deny", "verify:pending", "verify:error",
		"verify:allow", "verify:pending", "verify:deny", "verify:allow"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("audit:\n got %v\nwant %v", events, want)
	}
}

// TestSendLimitBurst: pushes and emailed codes pass one limit. Rounds of
// simultaneous starts of both, for one user, send at most one of each
// per round (the one pending), and no more than the limit (3 per window)
// in all: the fourth round is refused for both.
func TestSendLimitBurst(t *testing.T) {
	emu := startEmulator(t)
	srv := emailtest.Start(t, emailtest.Options{})
	plugins := testbin.Copy(t, "twofactor-provider-duo", "twofactor-provider-email")
	chmodGoW(t, plugins)
	h := startHostIn(t, plugins, "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: "secure"})+emailStaff(srv),
		hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn}))
	emu.AddUser("erin")
	h.enrollDuo(emu, "erin", "staff")
	if r := h.do("POST", "/v1/users/erin/enrollments", appKey, map[string]any{"provider": "email", "audience": "staff",
		"inputs": map[string]string{"email": "erin@x.example"}}); r.status != http.StatusCreated {
		t.Fatalf("enroll email: %d %v", r.status, r.body)
	}
	if c := h.do("POST", "/v1/users/erin/enrollments/email/confirm", appKey, map[string]string{"code": srv.LastCode(t, 0, "erin@x.example")}); c.str("status") != "active" {
		t.Fatalf("confirm email: %d %v", c.status, c.body)
	}
	mails := len(srv.Messages())

	const size = 6
	for round := 1; round <= 4; round++ {
		emu.ScriptPush("erin", duotest.Push{Result: "allow", After: 20 * time.Second})
		providers := []struct{ name, factor string }{{"duo", "push"}, {"email", ""}}
		got := map[string]map[int]int{"duo": {}, "email": {}}
		pushTx := ""
		for i, r := range burst.Run(2*size, func(i int) response {
			p := providers[i%2]
			return h.do("POST", "/v1/users/erin/verifications", appKey, map[string]string{"provider": p.name, "audience": "staff", "factor": p.factor,
				"session": "erin-login"})
		}) {
			provider := providers[i%2].name
			got[provider][r.status]++
			if provider == "duo" && r.status == http.StatusCreated {
				pushTx = r.str("txid")
			}
		}
		for _, p := range []string{"duo", "email"} {
			want := map[int]int{http.StatusCreated: 1, http.StatusOK: size - 1}
			if round == 4 {
				want = map[int]int{http.StatusTooManyRequests: size}
			}
			if fmt.Sprint(got[p]) != fmt.Sprint(want) {
				t.Errorf("round %d, %s: statuses %v, want %v", round, p, got[p], want)
			}
		}
		if pushTx != "" { // the user approves: the pending slot is free
			emu.SetClockOffset(time.Duration(round) * 21 * time.Second)
			if v := h.duoVerify("erin", map[string]string{"txid": pushTx}); v.str("outcome") != "allow" {
				t.Fatalf("round %d: finish the push: %d %v", round, v.status, v.body)
			}
		}
		h.clock.Add(31 * time.Second) // past the email's resend_after
	}
	if n := pushesSent(emu); n != 3 {
		t.Errorf("%d pushes sent, want 3 (the limit)", n)
	}
	if n := len(srv.Messages()) - mails; n != 3 {
		t.Errorf("%d codes mailed, want 3 (the limit)", n)
	}
}

// TestPushLimitAcrossReplicas: two host processes on one PostgreSQL
// store; rounds of simultaneous push starts for one user, split between
// them, send one push per round and no more than the limit in all.
func TestPushLimitAcrossReplicas(t *testing.T) {
	emu := startEmulator(t)
	config, _ := postgresConfigAt(t, postgresDSN(t), "providers:\n"+duoSettings(t, emu, duoconfig.Options{Failmode: "secure"}))
	ra, rb := startReplica(t, config), startReplica(t, config)
	defer ra.stop()
	defer rb.stop()
	emu.AddUser("fay")
	ra.enrollDuo(emu, "fay", "staff")
	const size = 8
	for round := 1; round <= 4; round++ {
		emu.ScriptPush("fay", duotest.Push{Result: "allow"})
		statuses, txids := map[int]int{}, map[string]bool{}
		hosts := []*testHost{ra, rb}
		session := fmt.Sprint("fay-login-", round)
		for _, r := range burst.Run(size, func(i int) response {
			return hosts[i%2].do("POST", "/v1/users/fay/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "push",
				"session": session})
		}) {
			statuses[r.status]++
			if tx := r.str("txid"); tx != "" {
				txids[tx] = true
			}
		}
		want := map[int]int{http.StatusCreated: 1, http.StatusOK: size - 1}
		if round == 4 {
			want = map[int]int{http.StatusTooManyRequests: size}
		}
		if fmt.Sprint(statuses) != fmt.Sprint(want) || len(txids) > 1 {
			t.Errorf("round %d: statuses %v, txids %v; want %v and one txid", round, statuses, txids, want)
		}
		// Other logins on either replica while it waits: refused, no txid.
		for i, r := range burst.Run(size, func(i int) response {
			return hosts[i%2].do("POST", "/v1/users/fay/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "push",
				"session": fmt.Sprint("other-", i)})
		}) {
			if r.status != http.StatusTooManyRequests || r.str("txid") != "" {
				t.Errorf("round %d: another login's start %d over two replicas: %d %v, want 429 and no txid", round, i, r.status, r.body)
			}
		}
		for tx := range txids {
			if v := rb.duoVerify("fay", map[string]string{"txid": tx}); v.str("outcome") != "allow" {
				t.Fatalf("round %d: finish the push on the other replica: %d %v", round, v.status, v.body)
			}
		}
	}
	if n := pushesSent(emu); n != 3 {
		t.Errorf("%d pushes sent over two replicas, want 3 (the limit)", n)
	}
}
