package duotest

import (
	"bytes"
	"image/png"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

// The positive cases: requests built and signed by Duo's official Go client.

func TestOfficialPingCheckLogo(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)

	ping, err := api.Ping()
	if err != nil || ping.Stat != "OK" || ping.Response.Time != clk.Now().Unix() {
		t.Fatalf("ping = %+v, %v", ping, err)
	}
	check, err := api.Check()
	if err != nil || check.Stat != "OK" || check.Response.Time != clk.Now().Unix() {
		t.Fatalf("check = %+v, %v; requests %+v", check, err, s.Requests())
	}
	logo, err := api.Logo()
	if err != nil || logo.Stat != "OK" {
		t.Fatalf("logo = %+v, %v", logo, err)
	}

	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	want := []struct {
		path       string
		authorized bool
	}{{"/auth/v2/ping", false}, {"/auth/v2/check", true}, {"/auth/v2/logo", true}}
	for i, w := range want {
		r := reqs[i]
		if r.Method != "GET" || r.Path != w.path || r.Authorized != w.authorized || r.Code != 0 || r.Status != 200 {
			t.Errorf("request %d = %+v, want GET %s authorized=%v", i, r, w.path, w.authorized)
		}
	}
}

func TestOfficialPreauth(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	aliceID := s.AddUser("alice")
	s.SetPreauthResult("bob", "allow", "")
	s.AddUser("carol")
	s.SetPreauthResult("carol", "deny", "Go away")

	res, err := api.Preauth(authapi.PreauthUsername("alice"), authapi.PreauthIpAddr("192.0.2.7"))
	if err != nil || res.Stat != "OK" || res.Response.Result != "auth" || len(res.Response.Devices) != 1 {
		t.Fatalf("preauth alice = %+v, %v", res, err)
	}
	d := res.Response.Devices[0]
	if !strings.HasPrefix(d.Device, "DP") || d.Type != "phone" || strings.Join(d.Capabilities, ",") != "auto,push,sms,phone,mobile_otp" {
		t.Errorf("device = %+v", d)
	}
	byID, err := api.Preauth(authapi.PreauthUserId(aliceID))
	if err != nil || byID.Response.Result != "auth" {
		t.Errorf("preauth by user_id = %+v, %v", byID, err)
	}

	cases := []struct {
		username, result, msg string
	}{
		{"nobody", "enroll", msgEnroll},
		{"bob", "allow", msgBypass},
		{"carol", "deny", "Go away"},
	}
	for _, c := range cases {
		res, err := api.Preauth(authapi.PreauthUsername(c.username))
		if err != nil || res.Response.Result != c.result || res.Response.Status_Msg != c.msg {
			t.Errorf("preauth %s = %+v, %v; want %s %q", c.username, res.Response, err, c.result, c.msg)
		}
		if (c.result == "enroll") != (res.Response.Enroll_Portal_Url != "") {
			t.Errorf("preauth %s enroll_portal_url = %q", c.username, res.Response.Enroll_Portal_Url)
		}
	}

	missing, err := api.Preauth()
	if err != nil || missing.Stat != "FAIL" || deref(missing.Code) != 40002 || *missing.Message_Detail != "username" {
		t.Errorf("preauth without user = %+v, %v", missing, err)
	}
}

func TestOfficialEnroll(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)

	en, err := api.Enroll(authapi.EnrollUsername("dave"), authapi.EnrollValidSeconds(600))
	if err != nil || en.Stat != "OK" {
		t.Fatalf("enroll = %+v, %v", en, err)
	}
	r := en.Response
	if r.Username != "dave" || !strings.HasPrefix(r.User_Id, "DU") || !strings.HasPrefix(r.Activation_Code, "duo://") ||
		r.Expiration != clk.Now().Add(600*time.Second).Unix() ||
		!strings.HasPrefix(r.Activation_Barcode, "https://"+s.Host()+"/frame/qr?value=") {
		t.Fatalf("enroll response = %+v", r)
	}

	// The barcode is a PNG served by the emulator.
	resp, err := httpClient(t, s).Get(r.Activation_Barcode)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("barcode: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("barcode is not a PNG: %v", err)
	}

	status := func(userID, code string) string {
		t.Helper()
		st, err := api.EnrollStatus(userID, code)
		if err != nil || st.Stat != "OK" {
			t.Fatalf("enroll_status = %+v, %v", st, err)
		}
		return st.Response
	}
	if got := status(r.User_Id, r.Activation_Code); got != "waiting" {
		t.Fatalf("enroll_status before activation = %q", got)
	}
	if pre, _ := api.Preauth(authapi.PreauthUsername("dave")); pre.Response.Result != "enroll" {
		t.Fatalf("preauth before activation = %q", pre.Response.Result)
	}
	if got := status(r.User_Id, "duo://wrong"); got != "invalid" {
		t.Errorf("enroll_status with a wrong code = %q", got)
	}
	if err := s.ActivateEnrollment(r.Activation_Code); err != nil {
		t.Fatal(err)
	}
	if got := status(r.User_Id, r.Activation_Code); got != "success" {
		t.Fatalf("enroll_status after activation = %q", got)
	}
	if pre, _ := api.Preauth(authapi.PreauthUsername("dave")); pre.Response.Result != "auth" || len(pre.Response.Devices) != 1 {
		t.Fatalf("preauth after activation = %+v", pre.Response)
	}

	// Expiry: by ExpireEnrollment, and by valid_secs on the emulator clock.
	e2, _ := api.Enroll(authapi.EnrollUsername("erin"))
	if err := s.ExpireEnrollment(e2.Response.Activation_Code); err != nil {
		t.Fatal(err)
	}
	if got := status(e2.Response.User_Id, e2.Response.Activation_Code); got != "invalid" {
		t.Errorf("expired enroll_status = %q", got)
	}
	if s.ActivateEnrollment(e2.Response.Activation_Code) == nil {
		t.Error("activated an expired enrollment")
	}
	e3, _ := api.Enroll(authapi.EnrollValidSeconds(30))
	if e3.Response.Username == "" {
		t.Error("enroll without username returned no username")
	}
	clk.Advance(31 * time.Second)
	if got := status(e3.Response.User_Id, e3.Response.Activation_Code); got != "invalid" {
		t.Errorf("enroll_status after valid_secs = %q", got)
	}

	// An enrolled username cannot be enrolled again; missing params are named.
	if again, _ := api.Enroll(authapi.EnrollUsername("dave")); deref(again.Code) != 40002 || *again.Message_Detail != "username" {
		t.Errorf("re-enroll = %+v", again)
	}
	if miss, _ := api.EnrollStatus("", "x"); deref(miss.Code) != 40002 || *miss.Message_Detail != "user_id" {
		t.Errorf("enroll_status without user_id = %+v", miss)
	}
}

func TestOfficialPasscode(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	s.AddPasscode("alice", "123456")

	want := []struct{ result, status, msg string }{
		{"allow", "allow", msgAllow},
		{"deny", "deny", "Incorrect passcode. Please try again."}, // the same passcode twice
	}
	for i, w := range want {
		res, err := api.Auth("passcode", authapi.AuthUsername("alice"), authapi.AuthPasscode("123456"), authapi.AuthIpAddr("192.0.2.1"))
		if err != nil || res.Stat != "OK" || res.Response.Result != w.result || res.Response.Status != w.status || res.Response.Status_Msg != w.msg {
			t.Fatalf("attempt %d = %+v, %v; want %+v", i+1, res.Response, err, w)
		}
	}
	miss, err := api.Auth("passcode", authapi.AuthUsername("alice"))
	if err != nil || deref(miss.Code) != 40002 || *miss.Message_Detail != "passcode" {
		t.Errorf("passcode missing = %+v, %v", miss, err)
	}
}

func TestOfficialAsyncPush(t *testing.T) {
	s, clk := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	s.AddUser("alice")
	s.ScriptPush("alice", Push{Result: "allow", After: 10 * time.Second})

	res, err := api.Auth("push", authapi.AuthUsername("alice"), authapi.AuthAsync(), authapi.AuthDevice("auto"),
		authapi.AuthType("Login"), authapi.AuthDisplayUsername("Alice"), authapi.AuthPushinfo("from=billing&domain=example.com"),
		func(v *url.Values) { v.Set("hostname", "web1") })
	if err != nil || res.Stat != "OK" || res.Response.Txid == "" {
		t.Fatalf("auth = %+v, %v", res, err)
	}
	st, err := api.AuthStatus(res.Response.Txid)
	if err != nil || st.Response.Result != "waiting" || st.Response.Status != "pushed" {
		t.Fatalf("auth_status before = %+v, %v", st.Response, err)
	}
	clk.Advance(10 * time.Second)
	st, err = api.AuthStatus(res.Response.Txid)
	if err != nil || st.Response.Result != "allow" || st.Response.Status != "allow" {
		t.Fatalf("auth_status after = %+v, %v", st.Response, err)
	}
	bad, err := api.AuthStatus("no-such-txid")
	if err != nil || bad.Stat != "FAIL" || deref(bad.Code) != 40002 || *bad.Message_Detail != "txid" {
		t.Errorf("unknown txid = %+v, %v", bad, err)
	}
}
