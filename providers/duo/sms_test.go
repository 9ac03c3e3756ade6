package duo

import (
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/duo/duotest"
	"github.com/twofactor/twofactor/sdk"
)

// challenger returns p's challenge step, failing the test if it has none.
func challenger(t *testing.T, p *Provider) sdk.Challenger {
	t.Helper()
	c, ok := any(p).(sdk.Challenger)
	if !ok {
		t.Fatal("the Duo provider has no challenge step: a user with only SMS cannot be texted passcodes")
	}
	return c
}

// smsUser makes user known to Duo with only a phone without Duo Mobile
// (sms and phone calls) and returns the adopted state and the device id.
func (e *env) smsUser(p *Provider, user string) ([]byte, string) {
	e.t.Helper()
	dev := e.emu.AddDevice(user, "phone", "sms", "phone")
	return e.enrolled(p, user), dev
}

// smsAuths counts the /auth requests of factor sms.
func (e *env) smsAuths() int {
	n := 0
	for _, r := range e.emu.Requests() {
		if r.Path == "/auth/v2/auth" && r.Params.Get("factor") == "sms" {
			n++
		}
	}
	return n
}

// TestSMSSignIn: a user whose only Duo device is a phone without Duo
// Mobile signs in with passcodes Duo texts: the challenge asks Duo to
// text the phone (factor sms, that device), the message names no
// passcode, and a texted passcode typed with the challenge's TxID is
// checked by Duo as a passcode, once.
func TestSMSSignIn(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	ch := challenger(t, p)
	u := sdk.User{ID: "sam"}
	state, dev := e.smsUser(p, u.ID)
	now := e.clock.now()

	info, _ := p.Info(ctx)
	if !info.Capabilities.NeedsChallenge("sms") || !info.Capabilities.Offers("sms") || info.Texts.Validate() != nil {
		t.Fatalf("capabilities %+v: want factor sms offered, after a challenge", info.Capabilities)
	}
	res, err := ch.Challenge(ctx, sdk.ChallengeRequest{User: u, State: state, Factor: "sms", ClientIP: "192.0.2.7", Now: now})
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	if res.TxID == "" || !res.ExpiresAt.After(now) || res.ResendAfter.Before(now) || res.Message == "" {
		t.Errorf("Challenge = %+v", res)
	}
	sent := e.lastRequest("/auth/v2/auth")
	if got := sent.Params.Encode(); got != "device="+dev+"&factor=sms&ipaddr=192.0.2.7&username=sam" {
		t.Errorf("the text request's params = %s", got)
	}
	codes := e.emu.SMSPasscodes(u.ID)
	if len(codes) == 0 {
		t.Fatal("Duo texted no passcodes")
	}
	for _, c := range codes {
		if strings.Contains(res.Message, c) || strings.Contains(res.TxID, c) || strings.Contains(e.logs.String(), c) {
			t.Fatalf("a texted passcode is in the message, the TxID or the logs")
		}
	}

	verify := func(txid, code string) (sdk.VerifyResponse, error) {
		return p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, TxID: txid, Code: code, Now: now})
	}
	r, err := verify(res.TxID, "")
	wantOutcome(t, r, err, sdk.Pending, sdk.ReasonWaiting)
	r, err = verify(res.TxID, "0000000")
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonInvalidCode)
	r, err = verify(res.TxID, codes[0])
	wantOutcome(t, r, err, sdk.Allow, "")
	if got := e.lastRequest("/auth/v2/auth").Params.Get("factor"); got != FactorPasscode {
		t.Errorf("the texted passcode was checked with factor %q, want passcode", got)
	}
	r, err = verify(res.TxID, codes[0])
	wantOutcome(t, r, err, sdk.Deny, sdk.ReasonInvalidCode)
	// Named factor sms, with the code.
	r, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "sms", TxID: res.TxID, Code: codes[1], Now: now})
	wantOutcome(t, r, err, sdk.Allow, "")

	// sms without its challenge, or with a transaction of a push, is the
	// request's mistake.
	_, err = p.Verify(ctx, sdk.VerifyRequest{User: u, State: state, Factor: "sms", Code: codes[2], Now: now})
	wantKind(t, err, sdk.KindInvalidRequest, "txid")
}

// TestSMSDevice: the text goes to a device of the user's that can receive
// it, never another; a user with none is refused clearly, and nothing is
// sent.
func TestSMSDevice(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	ch := challenger(t, p)

	// A token and an app-only phone first, then the sms phone.
	e.emu.AddDevice("tess", "token")
	e.emu.AddDevice("tess", "phone", "auto", "push", "mobile_otp")
	phone := e.emu.AddDevice("tess", "phone", "sms")
	state := e.enrolled(p, "tess")
	if _, err := ch.Challenge(ctx, sdk.ChallengeRequest{User: sdk.User{ID: "tess"}, State: state, Factor: "sms", Now: e.clock.now()}); err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	if got := e.lastRequest("/auth/v2/auth").Params.Get("device"); got != phone {
		t.Errorf("texted device %q, want the sms phone %q", got, phone)
	}

	e.emu.AddDevice("ted", "token")
	e.emu.AddDevice("ted", "phone", "auto", "push", "phone", "mobile_otp")
	state = e.enrolled(p, "ted")
	before := e.smsAuths()
	_, err := ch.Challenge(ctx, sdk.ChallengeRequest{User: sdk.User{ID: "ted"}, State: state, Factor: "sms", Now: e.clock.now()})
	if se := wantKind(t, err, sdk.KindInvalidRequest, "factor"); !strings.Contains(se.Message, "text") {
		t.Errorf("refusal %q does not say no device takes text messages", se.Message)
	}
	if e.smsAuths() != before || e.emu.SMSPasscodes("ted") != nil {
		t.Error("a user without an sms-capable device was texted")
	}
}

// TestSMSFailsClosed: any failure at the text request (or the preauth
// before it) is an error: no TxID, nothing claimed sent, no passcode
// texted, and the failmode, even safe, never applies (a text is not an
// authentication).
func TestSMSFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    duotest.Failure
		kind sdk.Kind
	}{
		{"503", duotest.Failure{Path: "/auth/v2/auth", Status: 503}, sdk.KindUnavailable},
		{"500 at preauth", duotest.Failure{Path: "/auth/v2/preauth", Status: 500}, sdk.KindUnavailable},
		{"dropped", duotest.Failure{Path: "/auth/v2/auth", Drop: true}, sdk.KindUnavailable},
		{"hung", duotest.Failure{Path: "/auth/v2/auth", Delay: 5 * time.Second}, sdk.KindUnavailable},
		{"malformed", duotest.Failure{Path: "/auth/v2/auth", Malformed: true}, sdk.KindUnavailable},
		{"empty body", duotest.Failure{Path: "/auth/v2/auth", Raw: true}, sdk.KindUnavailable},
		{"401", duotest.Failure{Path: "/auth/v2/auth", Status: 401, FailCode: 40103}, sdk.KindInvalidCredentials},
		{"bare 401", duotest.Failure{Path: "/auth/v2/auth", Status: 401, EmptyBody: true}, sdk.KindInvalidCredentials},
		{"allow", duotest.Failure{Path: "/auth/v2/auth", Response: map[string]string{"result": "allow", "status": "allow", "status_msg": "ok"}}, sdk.KindInternal},
		{"deny not sent", duotest.Failure{Path: "/auth/v2/auth", Response: map[string]string{"result": "deny", "status": "deny", "status_msg": "no"}}, sdk.KindUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.activated(sdk.Settings{"failmode": "safe", "timeout": "1s"})
			ch := challenger(t, p)
			state, _ := e.smsUser(p, "sam")
			e.emu.Fail(10, tc.f)
			res, err := ch.Challenge(ctx, sdk.ChallengeRequest{User: sdk.User{ID: "sam"}, State: state, Factor: "sms", Now: e.clock.now()})
			if err == nil {
				t.Fatalf("Challenge = %+v, want an error", res)
			}
			if sdk.KindOf(err) != tc.kind {
				t.Errorf("Challenge error = %v (kind %s), want kind %s", err, sdk.KindOf(err), tc.kind)
			}
			if e.emu.SMSPasscodes("sam") != nil {
				t.Error("passcodes were texted")
			}
		})
	}
}

// TestSMSSetupConfirm: a user Duo already knows with only an SMS phone
// confirms the setup here with a passcode Duo texts on request: the
// challenge of a confirming setup texts the device Duo holds, and the
// texted passcode typed into the setup proves it. A setup still waiting
// for an activation, or a bypass, has nothing to text.
func TestSMSSetupConfirm(t *testing.T) {
	e := newEnv(t)
	p := e.activated(nil)
	ch := challenger(t, p)
	u := sdk.User{ID: "sue"}
	dev := e.emu.AddDevice(u.ID, "phone", "sms")
	begin, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollBegin})
	if err != nil || begin.Done {
		t.Fatalf("begin = %+v, %v", begin, err)
	}
	if _, err := ch.Challenge(ctx, sdk.ChallengeRequest{User: u, State: begin.State, Factor: "sms", Now: e.clock.now()}); err != nil {
		t.Fatalf("Challenge of the confirming setup: %v", err)
	}
	if got := e.lastRequest("/auth/v2/auth").Params.Get("device"); got != dev {
		t.Errorf("texted device %q, want %q", got, dev)
	}
	codes := e.emu.SMSPasscodes(u.ID)
	if len(codes) == 0 {
		t.Fatal("nothing texted")
	}
	res, err := p.Enroll(ctx, sdk.EnrollRequest{User: u, Step: sdk.EnrollFinish, State: begin.State, Code: codes[0]})
	if err != nil || !res.Done {
		t.Fatalf("finish with the texted passcode = %+v, %v", res, err)
	}

	// An activation still pending (Duo did not know the user): no device
	// is the user's to text.
	pending, err := p.Enroll(ctx, sdk.EnrollRequest{User: sdk.User{ID: "newbie"}, Step: sdk.EnrollBegin})
	if err != nil || pending.Display.ActivationCode == "" {
		t.Fatalf("begin of a user Duo does not know = %+v, %v", pending, err)
	}
	before := e.smsAuths()
	_, err = ch.Challenge(ctx, sdk.ChallengeRequest{User: sdk.User{ID: "newbie"}, State: pending.State, Factor: "sms", Now: e.clock.now()})
	wantKind(t, err, sdk.KindInvalidState, "")
	if e.smsAuths() != before {
		t.Error("a pending activation was texted")
	}
}
