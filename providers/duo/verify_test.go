package duo

import (
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

var pushAllow = duotest.Push{Result: "allow"}

func failure500(path string) duotest.Failure { return duotest.Failure{Path: path, Status: 500} }

func TestVerifyPasscode(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	u := sdk.User{ID: "alice"}
	state := e.enrolled(p, u.ID)
	e.emu.AddPasscode(u.ID, "123456")

	r, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "passcode", Code: "123 456", ClientIP: "192.0.2.7"})
	wantOutcome(t, r, err, sdk.Allow, "")
	req := e.lastRequest("/auth/v2/auth")
	if got := req.Params.Encode(); got != "factor=passcode&ipaddr=192.0.2.7&passcode=123456&username=alice" {
		t.Errorf("auth params = %s", got)
	}
	if pre := e.lastRequest("/auth/v2/preauth"); pre.Params.Get("ipaddr") != "192.0.2.7" {
		t.Errorf("preauth params = %v", pre.Params)
	}
	// Duo accepts a passcode once.
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Code: "123456"})
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonInvalidCode)
	// Malformed codes are refused without asking Duo.
	n := len(e.emu.Requests())
	for _, code := range []string{"12-34", "１２３４５６", strings.Repeat("1", 65), "   "} {
		r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "passcode", Code: code})
		wantOutcome(t, r, err, sdk.Deny, sdk.ReasonInvalidCode)
	}
	if len(e.emu.Requests()) != n {
		t.Error("malformed codes were sent to Duo")
	}
}

func TestVerifyPush(t *testing.T) {
	for _, tc := range []struct {
		name    string
		push    *duotest.Push
		advance time.Duration
		outcome sdk.Outcome
		reason  sdk.Reason
	}{
		{"approved", &duotest.Push{Result: "allow", After: 10 * time.Second}, 10 * time.Second, sdk.Allow, ""},
		{"denied", &duotest.Push{Result: "deny", After: 5 * time.Second}, 5 * time.Second, sdk.Deny, sdk.ReasonDeniedByUser},
		{"fraud", &duotest.Push{Result: "fraud", After: 5 * time.Second}, 5 * time.Second, sdk.Deny, ReasonFraud},
		{"scripted timeout", &duotest.Push{Result: "timeout", After: 5 * time.Second}, 5 * time.Second, sdk.Deny, ReasonTimeout},
		// No answer until Duo's push timeout: the emulator's clock moves
		// 61 s, beyond the Date tolerance, so this also exercises the
		// re-measurement after a 40105.
		{"unanswered", nil, duotest.PushTimeout + time.Second, sdk.Deny, ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.activated(sdk.Settings{"push_info": "app=Billing&env=prod", "display_username": "true"})
			u := sdk.User{ID: "bob", AccountName: "Bob B."}
			state := e.enrolled(p, u.ID)
			if tc.push != nil {
				e.emu.ScriptPush(u.ID, *tc.push)
			}
			r, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "push", ClientIP: "2001:db8::1"})
			wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
			if r.TxID == "" {
				t.Fatal("no txid")
			}
			auth := e.lastRequest("/auth/v2/auth")
			want := "async=1&device=auto&display_username=Bob+B.&factor=push&ipaddr=2001%3Adb8%3A%3A1&pushinfo=app%3DBilling%26env%3Dprod&username=bob"
			if got := auth.Params.Encode(); got != want {
				t.Errorf("auth params = %s\nwant %s", got, want)
			}
			txid := r.TxID
			r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, TxID: txid})
			wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
			if r.TxID != txid {
				t.Errorf("poll TxID = %q, want %q", r.TxID, txid)
			}
			e.clock.advance(tc.advance)
			r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, TxID: txid})
			wantOutcome(t, r, err, tc.outcome, tc.reason)
			if r.Details["duo_status"] == "" {
				t.Errorf("no duo_status in %+v", r.Details)
			}
		})
	}
}

func TestVerifyAuto(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	u := sdk.User{ID: "carol"}
	state := e.enrolled(p, u.ID)
	e.emu.ScriptPush(u.ID, pushAllow)
	// No factor and no code: Duo's auto factor, asynchronously.
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: u, State: state})
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	if f := e.lastRequest("/auth/v2/auth").Params; f.Get("factor") != "auto" || f.Get("async") != "1" || f.Has("display_username") {
		t.Errorf("auth params = %v", f)
	}
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "auto", TxID: r.TxID})
	wantOutcome(t, r, err, sdk.Allow, "")
	// Factor auto with a typed code is a passcode.
	e.emu.AddPasscode(u.ID, "777777")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "auto", Code: "777777"})
	wantOutcome(t, r, err, sdk.Allow, "")
}

func TestVerifyPreauthResults(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	state := e.enrolled(p, "frank")
	setup := len(e.emu.Requests()) // the setup's passcode went to /auth

	e.emu.SetPreauthResult("frank", "allow", "")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "frank"}, State: state, Code: "1"})
	wantOutcome(t, r, err, sdk.Allow, "")
	if r.Details["duo"] != "bypass" {
		t.Errorf("bypass details = %v", r.Details)
	}
	e.emu.SetPreauthResult("frank", "deny", "You are locked out.")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "frank"}, State: state, Factor: "push"})
	wantOutcome(t, r, err, sdk.Deny, ReasonDeniedByPolicy)
	if r.Message != "You are locked out." {
		t.Errorf("message = %q, want Duo's status_msg", r.Message)
	}
	if r.Details["status_msg"] != "You are locked out." {
		t.Errorf("details = %v, want Duo's status_msg for the audit log", r.Details)
	}
	e.emu.SetPreauthResult("frank", "enroll", "")
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "frank"}, State: state})
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonEnrollmentRequired)
	if u := r.Details["enroll_portal_url"]; !strings.HasPrefix(u, "https://"+e.emu.Host()+"/portal?code=") {
		t.Errorf("details = %v, want Duo's enroll_portal_url", r.Details)
	}
	for _, req := range e.emu.Requests()[setup:] {
		if req.Path == "/auth/v2/auth" {
			t.Errorf("auth was called after preauth decided: %+v", req)
		}
	}
}

func TestVerifyUnknownTxID(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	state := e.enrolled(p, "gina")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "gina"}, State: state, TxID: "5d5c0b2b-0000-4000-8000-000000000000"})
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonExpired)
}

func TestVerifyRejects(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	state := e.enrolled(p, "hal")
	u := sdk.User{ID: "hal"}
	n := len(e.emu.Requests())
	for _, tc := range []struct {
		name  string
		req   sdk.VerifyRequest
		kind  sdk.Kind
		field string
	}{
		{"sms factor without its challenge", sdk.VerifyRequest{User: u, State: state, Factor: "sms", Code: "1234567"}, sdk.KindInvalidRequest, "txid"},
		{"sms factor with a push's txid", sdk.VerifyRequest{User: u, State: state, Factor: "sms", TxID: "0b6f7a4c-1f2e-4d3c-9a8b-7c6d5e4f3a2b", Code: "1234567"}, sdk.KindInvalidRequest, "txid"},
		{"phone factor", sdk.VerifyRequest{User: u, State: state, Factor: "phone"}, sdk.KindInvalidRequest, "factor"},
		{"phone factor", sdk.VerifyRequest{User: u, State: state, Factor: "phone"}, sdk.KindInvalidRequest, "factor"},
		{"code with push", sdk.VerifyRequest{User: u, State: state, Factor: "push", Code: "1"}, sdk.KindInvalidRequest, "code"},
		{"txid with passcode", sdk.VerifyRequest{User: u, State: state, Factor: "passcode", Code: "1", TxID: "abc"}, sdk.KindInvalidRequest, "txid"},
		{"malformed txid", sdk.VerifyRequest{User: u, State: state, TxID: "../../x"}, sdk.KindInvalidRequest, "txid"},
		{"bad client ip", sdk.VerifyRequest{User: u, State: state, ClientIP: "not-an-ip"}, sdk.KindInvalidRequest, "client_ip"},
		{"no state", sdk.VerifyRequest{User: u}, sdk.KindInvalidState, ""},
		{"other user's state", sdk.VerifyRequest{User: sdk.User{ID: "ivy"}, State: state}, sdk.KindInvalidState, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Verify(ctx, tc.req)
			wantKind(t, err, tc.kind, tc.field)
		})
	}
	if len(e.emu.Requests()) != n {
		t.Error("refused requests reached Duo")
	}
}

func TestDenyReason(t *testing.T) {
	for _, tc := range []struct {
		status   string
		passcode bool
		want     sdk.Reason
	}{
		{"deny", false, sdk.ReasonDeniedByUser},
		{"deny", true, sdk.ReasonInvalidCode},
		{"fraud", false, ReasonFraud},
		{"timeout", false, ReasonTimeout},
		{"locked_out", true, ReasonLockedOut},
		{"locked_out", false, ReasonLockedOut},
		{"push_failed", false, sdk.ReasonUnavailable},
		{"", false, sdk.ReasonDeniedByUser},
	} {
		if got := denyReason(tc.status, tc.passcode); got != tc.want {
			t.Errorf("denyReason(%q, %v) = %q, want %q", tc.status, tc.passcode, got, tc.want)
		}
	}
}

// TestFailmode: when Duo cannot be reached, secure denies and safe allows,
// each saying so.
func TestFailmode(t *testing.T) {
	failures := []struct {
		name string
		// apply breaks the emulator after activation and enrollment.
		apply func(e *env)
	}{
		{"emulator down", func(e *env) { e.emu.Close() }},
		{"500", func(e *env) { e.emu.Fail(10, duotest.Failure{Status: 500}) }},
		{"503 on auth", func(e *env) { e.emu.Fail(10, duotest.Failure{Path: "/auth/v2/auth", Status: 503}) }},
		{"429 beyond the timeout", func(e *env) {
			e.emu.Fail(10, duotest.Failure{Status: 429, RetryAfter: 30 * time.Second})
		}},
		{"dropped connection", func(e *env) { e.emu.Fail(10, duotest.Failure{Drop: true}) }},
		{"slow", func(e *env) { e.emu.Fail(10, duotest.Failure{Delay: 5 * time.Second}) }},
	}
	for _, f := range failures {
		for _, mode := range []string{"secure", "safe"} {
			for _, factor := range []sdk.Factor{"passcode", "push"} {
				t.Run(f.name+"/"+mode+"/"+string(factor), func(t *testing.T) {
					e := newEnv(t)
					p := e.activated(sdk.Settings{"failmode": mode, "timeout": "1s"})
					state := e.enrolled(p, "jack")
					e.emu.AddPasscode("jack", "123456")
					f.apply(e)
					req := sdk.VerifyRequest{User: sdk.User{ID: "jack"}, State: state, Factor: factor}
					if factor == "passcode" {
						req.Code = "123456"
					}
					start := time.Now()
					r, err := p.Verify(ctx, req)
					el := time.Since(start)
					if el > 2*time.Second {
						t.Errorf("Verify took %v with a 1s timeout", el)
					}
					if strings.HasPrefix(f.name, "429") && el > 500*time.Millisecond {
						t.Errorf("a 429 whose Retry-After is beyond the timeout took %v, want an immediate answer", el)
					}
					if mode == "secure" {
						wantOutcome(t, r, err, sdk.Deny, sdk.ReasonUnavailable)
						if !strings.Contains(r.Message, "failmode secure") {
							t.Errorf("message = %q", r.Message)
						}
					} else {
						wantOutcome(t, r, err, sdk.Allow, sdk.ReasonFailmodeSafe)
						if !strings.Contains(r.Message, "failmode safe") {
							t.Errorf("message = %q", r.Message)
						}
					}
					if r.Details["failmode"] != mode || r.Details["duo_error"] == "" {
						t.Errorf("details = %v", r.Details)
					}
					if !strings.Contains(e.logs.String(), "failmode "+mode) {
						t.Error("no log line about the failmode decision")
					}
				})
			}
		}
	}
}

// TestRateLimitRetried: a 429 whose Retry-After fits in the timeout is
// retried once and the login goes through.
func TestRateLimitRetried(t *testing.T) {
	e := newEnv(t)
	p := e.activated(sdk.Settings{"timeout": "5s"})
	state := e.enrolled(p, "kim")
	setup := len(e.emu.Requests()) // the setup's passcode went to /auth
	e.emu.AddPasscode("kim", "246810")
	e.emu.Fail(1, duotest.Failure{Path: "/auth/v2/auth", Status: 429, RetryAfter: time.Second})
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "kim"}, State: state, Code: "246810"})
	wantOutcome(t, r, err, sdk.Allow, "")
	var auths []duotest.Request
	for _, req := range e.emu.Requests()[setup:] {
		if req.Path == "/auth/v2/auth" {
			auths = append(auths, req)
		}
	}
	if len(auths) != 2 || auths[0].Code != 42901 || !auths[1].Authorized || auths[1].Params.Get("passcode") != "246810" {
		t.Errorf("auth requests = %+v", auths)
	}
}

// TestTimingBound: a server that hangs cannot hold a verification longer
// than the timeout (plus 1 s).
func TestTimingBound(t *testing.T) {
	for _, path := range []string{"/auth/v2/preauth", "/auth/v2/auth"} {
		e := newEnv(t)
		p := e.activated(sdk.Settings{"timeout": "1s"})
		state := e.enrolled(p, "lee")
		e.emu.AddPasscode("lee", "135790")
		e.emu.Fail(1, duotest.Failure{Path: path, Delay: 5 * time.Second})
		start := time.Now()
		r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "lee"}, State: state, Code: "135790"})
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%s delayed: Verify took %v", path, el)
		}
		wantOutcome(t, r, err, sdk.Deny, sdk.ReasonUnavailable)
	}
}

// TestPollTimeoutIsPending: Duo long-polls auth_status, so a poll that
// reaches the timeout means the user has not answered yet, in either
// failmode.
func TestPollTimeoutIsPending(t *testing.T) {
	e := newEnv(t)
	p := e.activated(sdk.Settings{"timeout": "1s", "failmode": "safe"})
	state := e.enrolled(p, "max")
	r, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "max"}, State: state, Factor: "push"})
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	e.emu.Fail(1, duotest.Failure{Path: "/auth/v2/auth_status", Delay: 5 * time.Second})
	start := time.Now()
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "max"}, State: state, TxID: r.TxID})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("poll took %v", el)
	}
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
}

// TestVerifyCredentialErrors: keys revoked after activation are reported
// as such, not hidden behind the failmode.
func TestVerifyCredentialErrors(t *testing.T) {
	e := newEnv(t)
	p := e.activated(sdk.Settings{"failmode": "safe"})
	state := e.enrolled(p, "ned")
	if err := p.Configure(ctx, e.settings(sdk.Settings{"failmode": "safe", "secret_key": strings.Repeat("y", 40)})); err != nil {
		t.Fatal(err)
	}
	_, err := p.Verify(ctx, sdk.VerifyRequest{User: sdk.User{ID: "ned"}, State: state, Code: "123456"})
	wantKind(t, err, sdk.KindInvalidCredentials, "secret_key")
	if strings.Contains(err.Error(), strings.Repeat("y", 40)) {
		t.Error("error leaks the secret key")
	}
}
