package host_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/twofactor/twofactor/internal/burst"
	"github.com/twofactor/twofactor/providers/duo/duotest"
)

// A Duo user whose phone has no Duo Mobile signs in with passcodes Duo
// texts, through the host's challenge step: POST .../verifications with
// factor sms asks Duo to text them, POST .../verify with its txid checks
// the typed one. The host's send limit holds the texts.

// smsAuths counts the emulator's /auth requests of factor sms: the texts
// Duo was asked to send.
func smsAuths(emu *duotest.Server) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "sms" {
			n++
		}
	}
	return n
}

func (h *testHost) startSMS(user string) response {
	h.t.Helper()
	return h.do("POST", "/v1/users/"+user+"/verifications", appKey, map[string]string{"provider": "duo", "audience": "staff", "factor": "sms"})
}

// TestDuoSMSThroughHost: a burst of text requests at once texts once and
// answers every request with the one transaction; the texted passcode
// signs in once; after each resend_after one more text, up to the send
// limit, then 429 locked_out with nothing texted.
func TestDuoSMSThroughHost(t *testing.T) {
	emu := startEmulator(t)
	emu.AddDevice("sam", "phone", "sms", "phone")
	h := duoHost(t, emu, "safe")
	h.enrollDuo(emu, "sam", "staff")

	if v := h.duoVerify("sam", map[string]string{"factor": "sms", "code": "1234567"}); v.status != http.StatusBadRequest {
		t.Errorf("sms verify without a challenge: %d %v, want 400", v.status, v.body)
	}
	const n = 8
	created, txids := 0, map[string]bool{}
	for _, r := range burst.Run(n, func(int) response { return h.startSMS("sam") }) {
		if r.status == http.StatusCreated {
			created++
		}
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			t.Errorf("a start in the burst: %d %v", r.status, r.body)
		}
		txids[r.str("txid")] = true
	}
	if created != 1 || len(txids) != 1 || smsAuths(emu) != 1 {
		t.Fatalf("a burst of %d text requests: %d created, txids %v, %d texts; want 1, one txid, 1 text", n, created, txids, smsAuths(emu))
	}
	var txid string
	for id := range txids {
		txid = id
	}
	if p := h.poll("sam", txid); p.str("outcome") != "pending" {
		t.Errorf("poll: %d %v, want pending", p.status, p.body)
	}
	codes := emu.SMSPasscodes("sam")
	if len(codes) == 0 {
		t.Fatal("nothing texted")
	}
	if v := h.duoVerify("sam", map[string]string{"txid": txid, "code": "0000000"}); v.status != http.StatusOK || v.str("outcome") != "deny" {
		t.Errorf("a wrong passcode: %d %v, want deny", v.status, v.body)
	}
	if v := h.duoVerify("sam", map[string]string{"txid": txid, "code": codes[0]}); v.status != http.StatusOK || v.str("outcome") != "allow" {
		t.Fatalf("the texted passcode: %d %v, want allow", v.status, v.body)
	}
	if v := h.duoVerify("sam", map[string]string{"txid": txid, "code": codes[0]}); v.status != http.StatusNotFound {
		t.Errorf("the passcode again on its ended transaction: %d %v, want 404", v.status, v.body)
	}
	for i := range 2 { // texts 2 and 3 of the window
		h.clock.Add(time.Minute)
		if r := h.startSMS("sam"); r.status != http.StatusCreated || txids[r.str("txid")] {
			t.Fatalf("text %d after resend_after: %d %v, want a new txid", i+2, r.status, r.body)
		}
	}
	h.clock.Add(time.Minute)
	got := map[int]int{}
	for _, r := range burst.Run(n, func(int) response { return h.startSMS("sam") }) {
		got[r.status]++
	}
	if got[http.StatusTooManyRequests] != n || smsAuths(emu) != 3 {
		t.Errorf("a burst past the send limit: %v, %d texts; want every one 429 and 3 texts", got, smsAuths(emu))
	}
}

// TestDuoSMSFailsClosedThroughHost: Duo down at the text request, with
// failmode safe: 503, no transaction, nothing texted, and the user is not
// let in.
func TestDuoSMSFailsClosedThroughHost(t *testing.T) {
	emu := startEmulator(t)
	emu.AddDevice("sam", "phone", "sms")
	h := duoHost(t, emu, "safe")
	h.enrollDuo(emu, "sam", "staff")
	emu.Fail(100, duotest.Failure{Path: "/auth/v2/auth", Status: 503})
	r := h.startSMS("sam")
	if r.status != http.StatusServiceUnavailable || r.str("txid") != "" || r.str("outcome") == "allow" {
		t.Errorf("text request with Duo down: %d %v, want 503 without a txid", r.status, r.body)
	}
	if emu.SMSPasscodes("sam") != nil {
		t.Error("passcodes texted")
	}
	emu.ClearFailures()
	// The send that failed still counts, and nothing is pending: a new
	// request texts at once.
	if r := h.startSMS("sam"); r.status != http.StatusCreated || len(emu.SMSPasscodes("sam")) == 0 {
		t.Errorf("text request once Duo is back: %d %v", r.status, r.body)
	}
}

// TestDuoSMSSetupThroughHost: a user Duo already knows, with only an SMS
// phone, has Duo text passcodes to confirm the setup: a burst of text
// requests at once texts at most the send limit (3), the rest 429; a
// texted passcode confirms; with nothing pending, or a factor that is
// not sent on request, nothing is texted.
func TestDuoSMSSetupThroughHost(t *testing.T) {
	emu := startEmulator(t)
	emu.AddDevice("sue", "phone", "sms")
	h := duoHost(t, emu, "secure")
	send := func(factor string) response {
		return h.do("POST", "/v1/users/sue/enrollments/duo/send", appKey, map[string]string{"factor": factor})
	}
	if r := send("sms"); r.status != http.StatusNotFound {
		t.Errorf("send before any setup: %d %v, want 404", r.status, r.body)
	}
	if r := h.do("POST", "/v1/users/sue/enrollments", appKey, map[string]string{"provider": "duo", "audience": "staff"}); r.status != http.StatusCreated || r.str("status") != "pending" {
		t.Fatalf("begin: %d %v", r.status, r.body)
	}
	if r := send("push"); r.status != http.StatusBadRequest {
		t.Errorf("send of factor push: %d %v, want 400", r.status, r.body)
	}
	got := map[int]int{}
	for _, r := range burst.Run(8, func(int) response { return send("sms") }) {
		got[r.status]++
		if r.status == http.StatusOK && r.str("message") == "" {
			t.Errorf("a send without a message: %v", r.body)
		}
	}
	if got[http.StatusOK] != 3 || got[http.StatusTooManyRequests] != 5 || smsAuths(emu) != 3 {
		t.Fatalf("a burst of 8 setup texts: %v, %d texts; want 3 sent, 5 429, 3 texts", got, smsAuths(emu))
	}
	codes := emu.SMSPasscodes("sue")
	if len(codes) == 0 {
		t.Fatal("nothing texted")
	}
	if c := h.do("POST", "/v1/users/sue/enrollments/duo/confirm", appKey, map[string]string{"code": codes[0]}); c.status != http.StatusOK || c.str("status") != "active" {
		t.Fatalf("confirm with the texted passcode: %d %v", c.status, c.body)
	}
	h.clock.Add(time.Hour)
	if r := send("sms"); r.status != http.StatusNotFound || smsAuths(emu) != 3 {
		t.Errorf("send once active: %d %v (%d texts), want 404 and nothing texted", r.status, r.body, smsAuths(emu))
	}
}
