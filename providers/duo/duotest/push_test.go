package duotest

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

func TestScriptedAsyncPush(t *testing.T) {
	tests := []struct {
		script         *Push
		factor         string
		waitingStatus  string
		decideAt       time.Duration
		result, status string
	}{
		{&Push{Result: "allow", After: 5 * time.Second}, "push", "pushed", 5 * time.Second, "allow", "allow"},
		{&Push{Result: "deny", After: 5 * time.Second}, "push", "pushed", 5 * time.Second, "deny", "deny"},
		{&Push{Result: "fraud", After: 20 * time.Second}, "auto", "pushed", 20 * time.Second, "deny", "fraud"},
		{&Push{Result: "timeout", After: 30 * time.Second}, "push", "pushed", 30 * time.Second, "deny", "timeout"},
		{&Push{Result: "allow", After: 90 * time.Second}, "push", "pushed", PushTimeout, "deny", "timeout"},
		{&Push{Result: "allow", After: 3 * time.Second}, "phone", "calling", 3 * time.Second, "allow", "allow"},
		{nil, "push", "pushed", PushTimeout, "deny", "timeout"},
	}
	for _, tc := range tests {
		name := tc.factor + "-no-script"
		if tc.script != nil {
			name = tc.factor + "-" + tc.script.Result + "-after-" + tc.script.After.String()
		}
		t.Run(name, func(t *testing.T) {
			s, clk := start(t)
			ikey, skey := s.Integration()
			api := official(t, s, ikey, skey)
			s.AddUser("alice")
			if tc.script != nil {
				s.ScriptPush("alice", *tc.script)
			}
			res, err := api.Auth(tc.factor, authapi.AuthUsername("alice"), authapi.AuthAsync(), authapi.AuthDevice("auto"))
			if err != nil || res.Response.Txid == "" {
				t.Fatalf("auth = %+v, %v", res, err)
			}
			// Once the emulator clock has moved past the skew, a client that
			// signs with the real time gets 40105, as it would from Duo; poll
			// with requests signed on the emulator clock instead.
			hc := httpClient(t, s)
			type statusResp struct{ Result, Status, Status_Msg string }
			status := func() statusResp {
				t.Helper()
				_, body, env := call{path: "/auth/v2/auth_status", params: url.Values{"txid": {res.Response.Txid}}, ikey: ikey, skey: skey}.do(t, s, hc)
				var r statusResp
				if env.Stat != "OK" || json.Unmarshal(env.Response, &r) != nil {
					t.Fatalf("auth_status: %s", body)
				}
				return r
			}
			st := status()
			if st.Result != "waiting" || st.Status != tc.waitingStatus || st.Status_Msg == "" {
				t.Fatalf("at 0 = %+v", st)
			}
			clk.Advance(tc.decideAt - time.Second)
			if st := status(); st.Result != "waiting" {
				t.Fatalf("1s before = %+v", st)
			}
			clk.Advance(time.Second)
			st = status()
			if st.Result != tc.result || st.Status != tc.status || st.Status_Msg == "" {
				t.Fatalf("at %s = %+v, want %s/%s", tc.decideAt, st, tc.result, tc.status)
			}
			clk.Advance(time.Hour) // decided once and for all
			if again := status(); again != st {
				t.Fatalf("later = %+v", again)
			}
		})
	}
}

func TestPushScriptsFIFOAndPerUser(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	s.AddUser("bob")
	s.ScriptPush("alice", Push{Result: "deny"})
	s.ScriptPush("alice", Push{Result: "allow"})
	s.ScriptPush("bob", Push{Result: "fraud"})

	var got []string
	for _, u := range []string{"alice", "bob", "alice"} {
		res, err := api.Auth("push", authapi.AuthUsername(u), authapi.AuthAsync())
		if err != nil {
			t.Fatal(err)
		}
		st, err := api.AuthStatus(res.Response.Txid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, st.Response.Status)
	}
	if strings.Join(got, ",") != "deny,fraud,allow" {
		t.Fatalf("statuses = %v", got)
	}
}

func TestSyncAuth(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	s.SetPreauthResult("bob", "allow", "")
	s.AddUser("carol")
	s.SetPreauthResult("carol", "deny", "")
	s.SetPreauthResult("dave", "enroll", "")

	tests := []struct {
		name           string
		script         *Push
		factor, user   string
		result, status string
	}{
		{"push allow, After ignored", &Push{Result: "allow", After: 45 * time.Second}, "push", "alice", "allow", "allow"},
		{"auto deny", &Push{Result: "deny", After: 10 * time.Second}, "auto", "alice", "deny", "deny"},
		{"push fraud", &Push{Result: "fraud"}, "push", "alice", "deny", "fraud"},
		{"push timeout", &Push{Result: "timeout"}, "push", "alice", "deny", "timeout"},
		{"phone allow", &Push{Result: "allow"}, "phone", "alice", "allow", "allow"},
		{"sms", nil, "sms", "alice", "deny", "sent"},
		{"bypass user", nil, "push", "bob", "allow", "bypass"},
		{"denied user", nil, "push", "carol", "deny", "deny"},
		{"user to enroll", nil, "push", "dave", "deny", "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.script != nil {
				s.ScriptPush(tc.user, *tc.script)
			}
			res, err := api.Auth(tc.factor, authapi.AuthUsername(tc.user), authapi.AuthDevice("auto"))
			if err != nil || res.Stat != "OK" || res.Response.Result != tc.result || res.Response.Status != tc.status || res.Response.Status_Msg == "" {
				t.Fatalf("auth = %+v, %v", res, err)
			}
		})
	}
}

func TestSyncPushWithoutScriptWaitsForTimeout(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	waiting := make(chan struct{}, 1)
	s.mu.Lock()
	s.onWaiting = func() { waiting <- struct{}{} }
	s.mu.Unlock()

	type outcome struct {
		res *authapi.AuthResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := api.Auth("push", authapi.AuthUsername("alice"))
		done <- outcome{res, err}
	}()
	<-waiting
	clk.Advance(PushTimeout)
	select {
	case o := <-done:
		if o.err != nil || o.res.Response.Result != "deny" || o.res.Response.Status != "timeout" {
			t.Fatalf("auth = %+v, %v", o.res, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the synchronous push did not time out on the emulator clock")
	}
}

func TestAuthParams(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	id := s.AddUser("alice")
	pre, _ := api.Preauth(authapi.PreauthUsername("alice"))
	dev := pre.Response.Devices[0].Device

	set := func(k, v string) func(*url.Values) { return func(p *url.Values) { p.Set(k, v) } }
	tests := []struct {
		name   string
		factor string
		opts   []func(*url.Values)
		detail string // "" = OK
	}{
		{"by user_id and device id", "push", []func(*url.Values){authapi.AuthUserId(id), authapi.AuthDevice(dev), authapi.AuthAsync()}, ""},
		{"no device means auto", "push", []func(*url.Values){authapi.AuthUsername("alice"), authapi.AuthAsync()}, ""},
		{"unknown factor", "yubikey", []func(*url.Values){authapi.AuthUsername("alice")}, "factor"},
		{"no user", "push", nil, "username"},
		{"both user and user_id", "push", []func(*url.Values){authapi.AuthUsername("alice"), authapi.AuthUserId(id)}, "user_id"},
		{"unknown user", "push", []func(*url.Values){authapi.AuthUsername("zed")}, "username"},
		{"unknown user_id", "push", []func(*url.Values){authapi.AuthUserId("DUNOPE")}, "user_id"},
		{"unknown device", "push", []func(*url.Values){authapi.AuthUsername("alice"), authapi.AuthDevice("DPNOPE")}, "device"},
		{"pushinfo too long", "push", []func(*url.Values){authapi.AuthUsername("alice"), authapi.AuthPushinfo(strings.Repeat("a", 20000))}, "pushinfo"},
		{"async=0 is synchronous", "sms", []func(*url.Values){authapi.AuthUsername("alice"), set("async", "0")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := api.Auth(tc.factor, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.detail == "" {
				if res.Stat != "OK" {
					t.Fatalf("auth = %+v", res)
				}
				return
			}
			if res.Stat != "FAIL" || deref(res.Code) != 40002 || res.Message_Detail == nil || *res.Message_Detail != tc.detail {
				t.Fatalf("auth = %+v, want 40002 %s", res, tc.detail)
			}
		})
	}
}
