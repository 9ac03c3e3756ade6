package duotest

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/duosecurity/duo_api_golang/authapi"
)

// TestSMSPasscodes: factor=sms is answered as Duo answers it (deny, status
// "sent", "New SMS passcodes sent."), texts a batch of passcodes to an
// sms-capable device only, each good once, and a new batch replaces the
// last; preauth's sms_nextcode follows the batch.
func TestSMSPasscodes(t *testing.T) {
	s, _ := start(t)
	ikey, skey := s.Integration()
	api := official(t, s, ikey, skey)
	token := s.AddDevice("sam", "token")
	phone := s.AddDevice("sam", "phone", "sms", "phone")

	nextcode := func() map[string]string {
		t.Helper()
		_, body, err := api.SignedCall("POST", "/auth/v2/preauth", url.Values{"username": {"sam"}})
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Response struct {
				Result  string
				Devices []struct {
					Device      string  `json:"device"`
					SMSNextcode *string `json:"sms_nextcode"`
				}
			}
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Response.Result != "auth" {
			t.Fatalf("preauth: %s, %v", body, err)
		}
		out := map[string]string{}
		for _, d := range r.Response.Devices {
			if d.SMSNextcode != nil {
				out[d.Device] = *d.SMSNextcode
			}
		}
		return out
	}
	sms := func(device string) *authapi.AuthResult {
		t.Helper()
		res, err := api.Auth("sms", authapi.AuthUsername("sam"), authapi.AuthDevice(device))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	passcode := func(code string) string {
		t.Helper()
		res, err := api.Auth("passcode", authapi.AuthUsername("sam"), authapi.AuthPasscode(code))
		if err != nil || res.Stat != "OK" {
			t.Fatalf("passcode: %+v, %v", res, err)
		}
		return res.Response.Result
	}

	if got := nextcode(); len(got) != 1 || got[phone] != "" {
		t.Errorf("sms_nextcode before any text = %v, want only the phone's, empty", got)
	}
	if r := sms(token); r.Stat != "FAIL" || r.Code == nil || *r.Code != 40002 || s.SMSPasscodes("sam") != nil {
		t.Errorf("sms to a token: %+v; texted %v", r, s.SMSPasscodes("sam"))
	}
	r := sms(phone)
	if r.Stat != "OK" || r.Response.Result != "deny" || r.Response.Status != "sent" || r.Response.Status_Msg != msgSMS {
		t.Fatalf("sms = %+v, want deny sent %q", r, msgSMS)
	}
	first := s.SMSPasscodes("sam")
	if len(first) != smsBatch || first[0][:1] != "1" || len(first[0]) != smsLen {
		t.Fatalf("batch = %v", first)
	}
	if got := nextcode()[phone]; got != "1" {
		t.Errorf("sms_nextcode = %q, want 1", got)
	}
	if got := passcode(first[0]); got != "allow" {
		t.Errorf("first SMS passcode = %s, want allow", got)
	}
	if got := passcode(first[0]); got != "deny" {
		t.Errorf("the same SMS passcode again = %s, want deny", got)
	}
	if got := nextcode()[phone]; got != "2" {
		t.Errorf("sms_nextcode after one used = %q, want 2", got)
	}
	sms("auto")
	if got := passcode(first[1]); got != "deny" {
		t.Errorf("a passcode of a replaced batch = %s, want deny", got)
	}
	if got := passcode(s.SMSPasscodes("sam")[3]); got != "allow" {
		t.Errorf("a passcode of the new batch = %s, want allow", got)
	}
}
